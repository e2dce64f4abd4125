# expect: clean
"""Deliberate accumulation: zero_grad every k steps together with step(), loss scaled by k."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
crit = nn.MSELoss()
x, y = torch.randn(64, 3), torch.randn(64, 1)
k = 4
step = 0
opt.zero_grad()
while step < 16:
    i = (step % 8) * 8
    loss = crit(model(x[i:i + 8]), y[i:i + 8]) / k
    loss.backward()
    if (step + 1) % k == 0:
        opt.step()
        opt.zero_grad()
    step += 1
for i in range(8):
    opt.zero_grad()
    loss = crit(model(x[i * 8:(i + 1) * 8]), y[i * 8:(i + 1) * 8])
    loss.backward()
    if torch.isfinite(loss):
        opt.step()
