# expect: clean
"""The same regressor with the target kept as a column ([N, 1]) and a squeezed variant: shapes match."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(40, 2)
y = (x[:, 0] * 2 - x[:, 1]).unsqueeze(1)
y_flat = x[:, :1].sum(dim=1)
model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
criterion = nn.MSELoss()
for epoch in range(5):
    optimizer.zero_grad()
    loss = criterion(model(x), y) + nn.functional.l1_loss(model(x).squeeze(1), y_flat)
    loss.backward()
    optimizer.step()
