# expect: GL124@9 GL124@10
"""Freezing the backbone: a typo and a module attribute; neither freezes anything."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
for param in model[0].parameters():
    param.require_grad = False  # BUG: GL124
model[0].requires_grad = False  # BUG: GL124
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(16, 4), torch.randn(16, 1)
for epoch in range(3):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
