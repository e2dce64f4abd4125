# expect: clean
"""WGAN-style: several critic steps on real and detached fake samples, then one generator step."""
import torch
from torch import nn

torch.manual_seed(0)
latent = 8
generator = nn.Sequential(nn.Linear(latent, 32), nn.ReLU(), nn.Linear(32, 2))
critic = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
opt_g = torch.optim.RMSprop(generator.parameters(), lr=5e-4)
opt_c = torch.optim.RMSprop(critic.parameters(), lr=5e-4)
real_data = torch.randn(512, 2) * 0.5 + 1.0
for iteration in range(10):
    for _ in range(3):
        real = real_data[torch.randint(0, 512, (32,))]
        fake = generator(torch.randn(32, latent)).detach()
        critic_loss = critic(fake).mean() - critic(real).mean()
        opt_c.zero_grad()
        critic_loss.backward()
        opt_c.step()
        for p in critic.parameters():
            p.data.clamp_(-0.05, 0.05)
    fake = generator(torch.randn(32, latent))
    gen_loss = -critic(fake).mean()
    opt_g.zero_grad()
    gen_loss.backward()
    opt_g.step()
