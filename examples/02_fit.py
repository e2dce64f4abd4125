"""02 - the same training with gl.fit: the loop above in one call (same order of the same five steps).

Changed from 01: the DataLoader and the for-loops became `gl.fit(...)`; it returns a History.
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

model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

history = gl.fit(model, (X, y), loss="mse", optimizer="adam", lr=1e-3, batch_size=64, epochs=EPOCHS, seed=42)
print(f"final train_loss {history.records[-1]['train_loss']:.6f}")
