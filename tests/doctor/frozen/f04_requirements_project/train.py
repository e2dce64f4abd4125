# expect: clean
"""requirements.txt says torch>=2.6: the plain torch.load of the best state_dict is safe by default."""
import os
import tempfile

import torch
from torch import nn


def build():
    return nn.Sequential(nn.Linear(4, 12), nn.ReLU(), nn.Linear(12, 2))


torch.manual_seed(0)
x, y = torch.randn(90, 4), torch.randint(0, 2, (90,))
net = build()
opt = torch.optim.Adam(net.parameters(), lr=5e-3)
ckpt = os.path.join(tempfile.mkdtemp(), "best.pth")
best = None
for epoch in range(6):
    net.train()
    opt.zero_grad()
    loss = nn.functional.cross_entropy(net(x[:60]), y[:60])
    loss.backward()
    opt.step()
    net.eval()
    with torch.no_grad():
        val = nn.functional.cross_entropy(net(x[60:]), y[60:]).item()
    if best is None or val < best:
        best = val
        torch.save(net.state_dict(), ckpt)

net = build()
net.load_state_dict(torch.load(ckpt))
net.eval()
with torch.no_grad():
    print((net(x[60:]).argmax(1) == y[60:]).float().mean().item())
