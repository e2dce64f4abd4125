# expect: GL128@18
"""GAN: the discriminator step back-propagates through the generator (fake not detached)."""
import torch
from torch import nn

torch.manual_seed(0)
G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
D = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
opt_g = torch.optim.Adam(G.parameters(), lr=2e-4)
opt_d = torch.optim.Adam(D.parameters(), lr=2e-4)
bce = nn.BCEWithLogitsLoss()
for step in range(5):
    real = torch.randn(16, 2) + 2
    z = torch.randn(16, 4)
    fake = G(z)
    opt_d.zero_grad()
    d_real = D(real)
    d_fake = D(fake)  # BUG: GL128
    loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
    loss_d.backward(retain_graph=True)
    opt_d.step()
    opt_g.zero_grad()
    g_out = D(fake)
    loss_g = bce(g_out, torch.ones_like(g_out))
    loss_g.backward()
    opt_g.step()
