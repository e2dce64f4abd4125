# expect: GL105@16
"""OneCycleLR per batch is right, but it steps before the optimizer."""
import torch
from torch import nn

torch.manual_seed(0)
x, y = torch.randn(40, 2), torch.randn(40, 1)
net = nn.Linear(2, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3 * 4)
for epoch in range(3):
    for k in range(4):
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x[k * 10:(k + 1) * 10]), y[k * 10:(k + 1) * 10])
        loss.backward()
        sched.step()  # BUG: GL105
        opt.step()
