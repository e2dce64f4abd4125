"""01 - the lesson's loop by hand (lesson 004): conjunction risk from 4 features, MLP 4-64-64-1, Adam, batch 64.

Every later example changes as little as possible from this one: `diff 01_loop_by_hand.py 02_fit.py`.
Set GLASSLOOP_EXAMPLE_EPOCHS to run fewer epochs (the tests use 2).
"""

import os

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

EPOCHS = int(os.environ.get("GLASSLOOP_EXAMPLE_EPOCHS", 60))

# The ssa workload: 2000 close approaches, 4 features, risk = sigmoid of a linear score.
torch.manual_seed(42)
N = 2000
X = torch.rand(N, 4) * torch.tensor([15.0, 5.0, 1.0, 24.0])
y = torch.sigmoid(0.5 * X[:, 0] - 2 * X[:, 1] + 0.3 * X[:, 2] - 0.1 * X[:, 3] - 2).unsqueeze(1)
X = X / torch.tensor([15.0, 5.0, 1.0, 24.0])  # features scaled to [0, 1]

model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
loss_fn = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)

for epoch in range(EPOCHS):
    model.train()
    total = 0.0
    for inputs, targets in loader:
        optimizer.zero_grad()  # 1. clear old gradients
        outputs = model(inputs)  # 2. forward
        loss = loss_fn(outputs, targets)  # 3. loss
        loss.backward()  # 4. backward
        optimizer.step()  # 5. update
        total += loss.item() * len(inputs)
    print(f"epoch {epoch + 1}/{EPOCHS}  train_loss {total / N:.6f}")
