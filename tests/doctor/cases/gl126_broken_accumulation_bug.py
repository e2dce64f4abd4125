# expect: GL126@14
"""Gradient accumulation that zeroes every micro-batch: it never accumulates."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randn(64, 3), torch.randn(64, 1)), batch_size=8, shuffle=True)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
accum_steps = 4
for epoch in range(2):
    for i, (xb, yb) in enumerate(loader):
        optimizer.zero_grad()  # BUG: GL126
        loss = nn.functional.mse_loss(model(xb), yb) / accum_steps
        loss.backward()
        if (i + 1) % accum_steps == 0:
            optimizer.step()
