# expect: GL104@19
"""Clipping after step: the exploding gradient has already been applied."""
import torch
from torch import nn
from torch.nn.utils import clip_grad_norm_

torch.manual_seed(0)
inputs = torch.randn(64, 4)
targets = inputs[:, :1] * 3
model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
crit = nn.MSELoss()
for epoch in range(3):
    for j in range(0, 64, 16):
        opt.zero_grad()
        loss = crit(model(inputs[j:j + 16]), targets[j:j + 16])
        loss.backward()
        opt.step()
        clip_grad_norm_(model.parameters(), max_norm=1.0)  # BUG: GL104
