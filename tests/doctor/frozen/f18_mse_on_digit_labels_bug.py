# expect: GL113|GL206@15
"""Digit labels (0..9) regressed with F.mse_loss against a single output column."""
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
pixels = torch.rand(100, 16)
digits = torch.randint(0, 10, (100,))
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(10):
    optimizer.zero_grad()
    pred = model(pixels).squeeze(1)
    loss = F.mse_loss(pred, digits.float())  # BUG: GL113|GL206
    loss.backward()
    optimizer.step()
