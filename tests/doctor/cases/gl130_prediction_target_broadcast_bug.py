# expect: GL130@15
"""A one-output regressor against a 1-D target: MSELoss broadcasts [N, 1] with [N] to [N, N]."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(40, 2)
y = x[:, 0] * 2 - x[:, 1]
model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
criterion = nn.MSELoss()
for epoch in range(5):
    optimizer.zero_grad()
    out = model(x)
    loss = criterion(out, y)  # BUG: GL130
    loss.backward()
    optimizer.step()
