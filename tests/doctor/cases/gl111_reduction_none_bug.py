# expect: GL111@16
"""Per-sample SGD with reduction='none': backward on the unreduced loss."""
import torch
from torch import nn

torch.manual_seed(0)
xs = torch.randn(20, 2)
ys = xs[:, :1] - xs[:, 1:]
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
criterion = nn.MSELoss(reduction="none")
for epoch in range(2):
    for i in range(len(xs)):
        optimizer.zero_grad()
        loss = criterion(model(xs[i:i + 1]), ys[i:i + 1])
        loss.backward()  # BUG: GL111
        optimizer.step()
