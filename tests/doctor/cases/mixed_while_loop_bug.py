# expect: GL118@8 GL103@25 GL117@31
"""Statistics before a slicing split, step before backward in a while loop, a literal-discount TD target."""
import torch
import torch.nn as nn
import torch.nn.functional as F

X = torch.randn(500, 6)
mean, std = X.mean(0), X.std(0)
X = (X - mean) / std
y = (X[:, :1] * 2).squeeze()
split = 400
X_train, X_test = X[:split], X[split:]
y_train, y_test = y[:split], y[split:]

net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
opt = torch.optim.SGD(net.parameters(), lr=0.01)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
step = 0
while step < 200:
    i = step % 4
    xb, yb = X_train[i * 100:(i + 1) * 100], y_train[i * 100:(i + 1) * 100]
    opt.zero_grad()
    out = net(xb)
    loss = F.mse_loss(out.squeeze(), yb)
    opt.step()
    loss.backward()
    sched.step()
    step += 1
target_net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
q = net(X_test)
td = y_test.unsqueeze(1) + 0.9 * target_net(X_test)
dqn_loss = F.smooth_l1_loss(q, td)
opt.zero_grad()
dqn_loss.backward()
opt.step()
