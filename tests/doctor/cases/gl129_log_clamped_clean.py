# expect: clean
"""The same hand-written loss, clamped; plus log of a positive quantity."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(32, 3)
y = (x[:, :1] > 0).float()
eps = 1e-7
for epoch in range(5):
    optimizer.zero_grad()
    p = torch.sigmoid(model(x)).clamp(eps, 1 - eps)
    loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    q = torch.sigmoid(model(x))
    loss = loss + 0.0 * -(y * torch.log(q + eps)).mean()
    loss.backward()
    optimizer.step()
print(torch.log(torch.tensor(2.0)))
