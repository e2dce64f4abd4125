# expect: GL116|GL214@16
"""The training step is decorated with @torch.no_grad() (copied from the evaluation helper)."""
import torch
from torch import nn


@torch.no_grad()
def evaluate(model, x, y):
    return nn.functional.mse_loss(model(x), y).item()


@torch.no_grad()
def fit_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()  # BUG: GL116|GL214
    optimizer.step()


torch.manual_seed(0)
model = nn.Linear(6, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
x, y = torch.randn(30, 6), torch.randn(30, 1)
for epoch in range(4):
    fit_step(model, optimizer, x, y)
    print(evaluate(model, x, y))
