# expect: clean
"""Split first; statistics from the training part only."""
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(100, 4) * 10 + 3
y = X[:, :1] * 0.5
n_train = 80
X_train, X_val = X[:n_train], X[n_train:]
y_train, y_val = y[:n_train], y[n_train:]
mean, std = X_train.mean(0), X_train.std(0)
X_train = (X_train - mean) / std
X_val = (X_val - mean) / std
model = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(5):
    model.train()
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(X_train), y_train)
    loss.backward()
    opt.step()
print(loss.item(), y.mean().item())
