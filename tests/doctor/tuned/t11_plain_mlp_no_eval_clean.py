# expect: clean
"""Validation without model.eval() on a model with no dropout and no batch-norm: no effect, so at most `info`."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.rand(300, 3) * 4 - 2
y = (x ** 2).sum(dim=1, keepdim=True)
x_train, y_train, x_val, y_val = x[:240], y[:240], x[240:], y[240:]
model = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.MSELoss()
for epoch in range(30):
    permutation = torch.randperm(len(x_train))
    for start in range(0, len(x_train), 48):
        batch = permutation[start:start + 48]
        optimizer.zero_grad()
        loss = loss_fn(model(x_train[batch]), y_train[batch])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        val_loss = loss_fn(model(x_val), y_val).item()
print(f"val {val_loss:.4f}")
