# expect: clean
"""numpy data, statistics of the training rows only, index batches, clip_grad_value_, loss.detach() sums."""
import numpy as np
import torch
from torch import nn

rng = np.random.default_rng(0)
X = rng.normal(size=(300, 3)).astype("float32")
y = (X @ np.array([1.0, -2.0, 0.5], dtype="float32"))[:, None]
idx = rng.permutation(len(X))
train_idx, val_idx = idx[:240], idx[240:]
mu = X[train_idx].mean(axis=0)
sd = X[train_idx].std(axis=0)
Xn = (X - mu) / sd
Xt, yt = torch.from_numpy(Xn[train_idx]), torch.from_numpy(y[train_idx])
Xv, yv = torch.from_numpy(Xn[val_idx]), torch.from_numpy(y[val_idx])

model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.MSELoss()
history = []
for epoch in range(50):
    model.train()
    perm = torch.randperm(len(Xt))
    epoch_loss = 0.0
    for start in range(0, len(Xt), 32):
        b = perm[start:start + 32]
        pred = model(Xt[b])
        loss = loss_fn(pred, yt[b])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)
        opt.step()
        epoch_loss += loss.detach()
    model.eval()
    with torch.no_grad():
        val = loss_fn(model(Xv), yv)
    history.append((float(epoch_loss) / 8, float(val)))
print(history[-1])
