# expect: GL113|GL206@18
"""Class labels 0..3 regressed with MSELoss on a one-output model (an ordinal guess that never classifies well)."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
features = torch.randn(160, 6)
classes = torch.randint(0, 4, (160,))
loader = DataLoader(TensorDataset(features, classes), batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.MSELoss()
for epoch in range(3):
    for inputs, labels in loader:
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, labels.float().unsqueeze(1))  # BUG: GL113|GL206
        loss.backward()
        optimizer.step()
