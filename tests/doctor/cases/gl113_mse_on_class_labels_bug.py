# expect: GL113@15
"""MSELoss against integer class labels 0..4 (a classification task)."""
import torch
import torch.nn as nn

torch.manual_seed(0)
features = torch.randn(60, 6)
labels = torch.randint(0, 5, (60,))
net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
opt = torch.optim.SGD(net.parameters(), lr=0.01)
mse = nn.MSELoss()
for epoch in range(5):
    opt.zero_grad()
    preds = net(features).squeeze(1)
    loss = mse(preds, labels.float())  # BUG: GL113
    loss.backward()
    opt.step()
