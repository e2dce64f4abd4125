# expect: clean
"""AMP-style loop: scaler.step(optimizer) is the step; unscale_ before clipping."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
scaler = torch.amp.GradScaler("cpu", enabled=False)
x, y = torch.randn(32, 4), torch.randn(32, 1)
for epoch in range(3):
    optimizer.zero_grad()
    with torch.autocast("cpu", enabled=False):
        loss = nn.functional.mse_loss(model(x), y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()
