# expect: GL105@16
"""The scheduler steps at the top of the epoch, before any optimizer step."""
import torch
from torch import nn
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
ds = TensorDataset(torch.randn(40, 2), torch.randn(40, 1))
train_loader = DataLoader(ds, batch_size=10, shuffle=True)
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
criterion = nn.MSELoss()
for epoch in range(4):
    scheduler.step()  # BUG: GL105
    for xb, yb in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
