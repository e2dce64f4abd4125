# expect: clean
"""reduction='none' for per-sample weights, then .mean() before backward: correct."""
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
x, y = torch.randn(32, 2), torch.randn(32, 1)
weights = torch.rand(32, 1)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
crit = nn.MSELoss(reduction="none")
for epoch in range(3):
    opt.zero_grad()
    per_sample = crit(model(x), y)
    loss = (per_sample * weights).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    loss2 = F.l1_loss(model(x), y, reduction="none").sum()
    loss2.backward()
    opt.step()
