# expect: clean
"""Two optimizers: zeroing G between D's backward and D's step is harmless (different parameters)."""
import torch
from torch import nn

torch.manual_seed(0)
netG = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
netD = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
optG = torch.optim.Adam(netG.parameters(), lr=1e-3)
optD = torch.optim.Adam(netD.parameters(), lr=1e-3)
bce = nn.BCEWithLogitsLoss()
real = torch.randn(16, 2) + 3
for step in range(5):
    z = torch.randn(16, 4)
    fake = netG(z)
    optD.zero_grad()
    d_loss = bce(netD(real), torch.ones(16, 1)) + bce(netD(fake.detach()), torch.zeros(16, 1))
    d_loss.backward()
    optG.zero_grad()
    optD.step()
    g_loss = bce(netD(fake), torch.ones(16, 1))
    g_loss.backward()
    optG.step()
print(d_loss.item(), g_loss.item())
