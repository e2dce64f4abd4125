# expect: clean
"""A checkpoint with a custom config class loaded inside torch.serialization.safe_globals (GL115 look-alike)."""
import dataclasses
import os
import tempfile

import torch
from torch import nn


@dataclasses.dataclass
class RunConfig:
    lr: float
    epochs: int


config = RunConfig(lr=0.05, epochs=10)
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
x = torch.randn(64, 2)
y = (x[:, :1] * x[:, 1:]).tanh()
for epoch in range(config.epochs):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()

path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
torch.save({"model": model.state_dict(), "config": config}, path)
with torch.serialization.safe_globals([RunConfig]):
    checkpoint = torch.load(path)
model.load_state_dict(checkpoint["model"])
print(checkpoint["config"], loss.item())
