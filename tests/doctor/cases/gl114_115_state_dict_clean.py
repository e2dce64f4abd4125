# expect: clean
"""state_dict saved in a checkpoint dict and loaded with weights_only=True."""
import os
import tempfile

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, x):
        return self.fc(x)


model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "best.pt")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)
    ckpt = torch.load(path, weights_only=True)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
