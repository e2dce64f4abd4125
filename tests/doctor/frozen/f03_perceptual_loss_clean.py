# expect: clean
"""A small autoencoder trained with pixel + perceptual terms summed per batch over frozen feature layers."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
features.requires_grad_(False)
autoencoder = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))
optimizer = torch.optim.Adam(autoencoder.parameters(), lr=1e-3)
images = DataLoader(TensorDataset(torch.rand(32, 1, 12, 12)), batch_size=8, shuffle=True)
l1 = nn.L1Loss()
for epoch in range(2):
    for (batch,) in images:
        optimizer.zero_grad()
        recon = autoencoder(batch)
        total = l1(recon, batch)
        a, b = recon, batch
        for layer in features:
            a, b = layer(a), layer(b)
            if isinstance(layer, nn.ReLU):
                total = total + 0.1 * l1(a, b)
        total.backward()
        optimizer.step()
