# expect: clean
"""DCGAN-style: D sees fake.detach(); G's step uses D(fake) without detach, as it should."""
import torch
from torch import nn

torch.manual_seed(0)
generator = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
discriminator = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
optimizer_g = torch.optim.Adam(generator.parameters(), lr=2e-4)
optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4)
criterion = nn.BCEWithLogitsLoss()
for step in range(5):
    real = torch.randn(16, 2) + 2
    fake = generator(torch.randn(16, 4))
    optimizer_d.zero_grad()
    out_real = discriminator(real)
    out_fake = discriminator(fake.detach())
    loss_d = criterion(out_real, torch.ones_like(out_real)) + criterion(out_fake, torch.zeros_like(out_fake))
    loss_d.backward()
    optimizer_d.step()
    optimizer_g.zero_grad()
    out = discriminator(fake)
    loss_g = criterion(out, torch.ones_like(out))
    loss_g.backward()
    optimizer_g.step()
