# expect: GL125|GL203@20
"""The optimizer is built, then the model is rebuilt with pretrained weights: the optimizer updates the old one."""
import os
import tempfile

import torch
from torch import nn


def make_model():
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))


torch.manual_seed(0)
pretrained = os.path.join(tempfile.mkdtemp(), "pretrained.pt")
torch.save(make_model().state_dict(), pretrained)

model = make_model()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
model = make_model()  # BUG: GL125|GL203
model.load_state_dict(torch.load(pretrained, weights_only=True))
x, y = torch.randn(64, 4), torch.randn(64, 1)
for epoch in range(20):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
print(loss.item())
