# expect: clean
"""A complete correct loop with aliases, a while loop, an evaluate helper and early stopping."""
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


class MLP(nn.Module):
    def __init__(self, d_in, hidden):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)


def evaluate(model, loader):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            total += F.mse_loss(model(inputs), targets, reduction="sum").item()
            count += len(inputs)
    model.train()
    return total / count


torch.manual_seed(0)
X, Y = torch.randn(96, 4), torch.randn(96, 1)
perm = torch.randperm(96)
train_idx, val_idx = perm[:72], perm[72:]
mu, sd = X[train_idx].mean(0), X[train_idx].std(0)
X = (X - mu) / sd
train_loader = DataLoader(TensorDataset(X[train_idx], Y[train_idx]), batch_size=24, shuffle=True)
val_loader = DataLoader(TensorDataset(X[val_idx], Y[val_idx]), batch_size=24)
model = MLP(4, 16)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
opt = optimizer
crit = nn.MSELoss()
best, patience, epoch = float("inf"), 0, 0
while epoch < 5 and patience < 3:
    model.train()
    for xb, yb in train_loader:
        opt.zero_grad(set_to_none=True)
        loss = crit(model(xb), yb)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    val = evaluate(model, val_loader)
    if val < best:
        best, patience = val, 0
    else:
        patience += 1
    epoch += 1
print(best)
