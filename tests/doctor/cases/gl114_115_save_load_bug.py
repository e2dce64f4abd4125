# expect: GL114@20 GL115@22
"""Pickle the whole module, then load without weights_only=True."""
import os
import tempfile

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(20, 3), torch.randn(20, 1)
for epoch in range(3):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model.pt")
    torch.save(model, path)  # BUG: GL114
    torch.save(model.state_dict(), path + ".sd")
    restored = torch.load(path + ".sd")  # BUG: GL115
    model.load_state_dict(restored)
