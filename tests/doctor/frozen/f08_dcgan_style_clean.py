# expect: clean
"""DCGAN-style step: D on real and on G(z).detach(), then G through D, each with its own optimizer."""
import torch
from torch import nn

torch.manual_seed(0)
netG = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 28))
netD = nn.Sequential(nn.Linear(28, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
criterion = nn.BCEWithLogitsLoss()
optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
dataset = torch.randn(256, 28)
for i in range(8):
    real = dataset[i * 32:(i + 1) * 32]
    ones, zeros = torch.ones(32, 1), torch.zeros(32, 1)
    netD.zero_grad()
    errD_real = criterion(netD(real), ones)
    errD_real.backward()
    noise = torch.randn(32, 16)
    fake = netG(noise)
    errD_fake = criterion(netD(fake.detach()), zeros)
    errD_fake.backward()
    optimizerD.step()
    netG.zero_grad()
    errG = criterion(netD(fake), ones)
    errG.backward()
    optimizerG.step()
