# expect: clean
"""Style transfer: the per-batch loss is a sum of content and style terms over layers (GL110 look-alike)."""
import torch
import torch.nn.functional as F
from torch import nn


def gram(features):
    b, c, h, w = features.shape
    flat = features.view(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


torch.manual_seed(0)
extractor = nn.ModuleList([nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)])
for p in extractor.parameters():
    p.requires_grad_(False)
content = torch.rand(1, 3, 16, 16)
style = torch.rand(1, 3, 16, 16)
image = content.clone().requires_grad_(True)
optimizer = torch.optim.Adam([image], lr=0.05)
style_weight, content_weight = 1e3, 1.0

for step in range(10):
    optimizer.zero_grad()
    loss = 0.0
    x, s, c = image, style, content
    for layer in extractor:
        x, s, c = F.relu(layer(x)), F.relu(layer(s)), F.relu(layer(c))
        loss += style_weight * F.mse_loss(gram(x), gram(s))
        loss += content_weight * F.mse_loss(x, c)
    loss.backward()
    optimizer.step()
    if step % 5 == 0:
        print(step, loss.item())
