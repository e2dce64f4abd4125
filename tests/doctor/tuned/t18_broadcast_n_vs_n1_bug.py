# expect: GL130|GL205@16
"""Prediction [N, 1] against target [N]: MSELoss broadcasts to [N, N] (PyTorch warns 'Using a target size ...')."""
import torch
from torch import nn

torch.manual_seed(0)
n = 64
x = torch.randn(n, 3)
y = 3 * x[:, 0] - x[:, 2] + 0.1 * torch.randn(n)
model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
mse = nn.MSELoss()
for epoch in range(50):
    optimizer.zero_grad()
    prediction = model(x)
    loss = mse(prediction, y)  # BUG: GL130|GL205
    loss.backward()
    optimizer.step()
print(loss.item())
