# expect: GL122@16
"""GradScaler: clipping the still-scaled gradients (no unscale_)."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scaler = torch.amp.GradScaler("cpu", enabled=False)
x, y = torch.randn(32, 4), torch.randn(32, 1)
for epoch in range(3):
    optimizer.zero_grad()
    with torch.autocast("cpu", enabled=False):
        loss = nn.functional.mse_loss(model(x), y)
    scaler.scale(loss).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # BUG: GL122
    scaler.step(optimizer)
    scaler.update()
