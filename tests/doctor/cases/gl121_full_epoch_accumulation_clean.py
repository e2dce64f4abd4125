# expect: clean
"""Deliberate: gradient of the whole epoch accumulated over batches, one step per epoch."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
batches = [(torch.randn(8, 2), torch.randn(8, 1)) for _ in range(4)]
for epoch in range(3):
    optimizer.zero_grad()
    for xb, yb in batches:
        loss = nn.functional.mse_loss(model(xb), yb) / len(batches)
        loss.backward()
    optimizer.step()
one_step = nn.Linear(1, 1)
opt2 = torch.optim.SGD(one_step.parameters(), lr=0.1)
opt2.zero_grad()
single = (one_step(torch.ones(1, 1)) - 2).pow(2).mean()
single.backward()
opt2.step()
