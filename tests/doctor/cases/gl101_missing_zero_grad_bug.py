# expect: GL101@16
"""Linear regression with a DataLoader; gradients are never cleared."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.randn(64, 1)
y = 2 * x + 1
loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
model = nn.Linear(1, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
criterion = nn.MSELoss()
for epoch in range(3):
    for xb, yb in loader:
        pred = model(xb)  # BUG: GL101 (zero_grad belongs before the forward pass)
        loss = criterion(pred, yb)
        loss.backward()
        optimizer.step()
print("done", loss.item())
