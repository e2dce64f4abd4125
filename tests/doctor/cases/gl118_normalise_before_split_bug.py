# expect: GL118@9
"""Standardise with statistics of all rows, then split into train/validation."""
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(100, 4) * 10 + 3
y = X[:, :1] * 0.5
X = (X - X.mean(dim=0)) / X.std(dim=0)  # BUG: GL118
X_train, X_val = X[:80], X[80:]
y_train, y_val = y[:80], y[80:]
model = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(5):
    model.train()
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(X_train), y_train)
    loss.backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        val_loss = nn.functional.mse_loss(model(X_val), y_val)
