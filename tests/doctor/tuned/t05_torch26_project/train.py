# expect: clean
"""A project pinned to torch>=2.6 (pyproject beside it): torch.load defaults to weights_only=True (GL115 look-alike)."""
import os
import tempfile

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(32, 3)
y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
for epoch in range(20):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()

path = os.path.join(tempfile.mkdtemp(), "model.pt")
torch.save(model.state_dict(), path)
restored = nn.Linear(3, 1)
restored.load_state_dict(torch.load(path))
print(loss.item())
