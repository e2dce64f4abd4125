"""03 - add a validation set: the first 80% trains, the last 20% judges (lesson 004's split).

Changed from 02: the split, `val=` in fit, and reading the best epoch and gl.evaluate on the held-out part.
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
                 seed=42)
print(f"best epoch {history.best_epoch + 1}: val_loss {history.best_val_loss:.6f}")
print("held-out:", gl.evaluate(model, val, loss="mse", metrics=["mae"]))
