"""04 - add a learning-rate schedule and gradient clipping (lesson 004's "complete recipe").

Changed from 03: `scheduler="cosine"` (stepped once per epoch, after the optimizer) and `clip_grad_norm=1.0`
(between backward and step). History records the lr and the pre-clip gradient norm of every epoch.
"""

import os

import torch
from torch import nn

import glassloop as gl

EPOCHS = int(os.environ.get("GLASSLOOP_EXAMPLE_EPOCHS", 60))

# The ssa workload: 2000 close approaches, 4 features, risk = sigmoid of a linear score.
torch.manual_seed(42)
N = 2000
X = torch.rand(N, 4) * torch.tensor([15.0, 5.0, 1.0, 24.0])
y = torch.sigmoid(0.5 * X[:, 0] - 2 * X[:, 1] + 0.3 * X[:, 2] - 0.1 * X[:, 3] - 2).unsqueeze(1)
X = X / torch.tensor([15.0, 5.0, 1.0, 24.0])  # features scaled to [0, 1]
split = int(0.8 * N)
train, val = (X[:split], y[:split]), (X[split:], y[split:])

model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

history = gl.fit(model, train, val=val, loss="mse", optimizer="adam", lr=1e-3, batch_size=64, epochs=EPOCHS,
                 seed=42, scheduler="cosine", clip_grad_norm=1.0)
print(f"best epoch {history.best_epoch + 1}: val_loss {history.best_val_loss:.6f}")
print("held-out:", gl.evaluate(model, val, loss="mse", metrics=["mae"]))
print("lr by epoch:", [f"{lr:.2e}" for lr in history["lr"]][:5], "...")
print("pre-clip grad norm by epoch:", [f"{norm:.3f}" for norm in history["grad_norm"]][:5], "...")
