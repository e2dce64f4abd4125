# expect: GL130|GL205@16
"""House-price style regression: targets are a 1-D tensor, the model returns [N, 1]; L1Loss broadcasts to [N, N]."""
import torch
from torch import nn

torch.manual_seed(0)
sizes = torch.rand(120, 2) * 3
prices = 100 * sizes[:, 0] + 20 * sizes[:, 1]
net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
opt = torch.optim.Adam(net.parameters(), lr=0.05)
criterion = nn.L1Loss()
for epoch in range(40):
    for i in range(0, 120, 30):
        opt.zero_grad()
        out = net(sizes[i:i + 30])
        loss = criterion(out, prices[i:i + 30])  # BUG: GL130|GL205
        loss.backward()
        opt.step()
