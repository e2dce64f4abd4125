# expect: GL111|GL204@15
"""A hand-written squared error without a reduction: backward() of a non-scalar tensor.
RuntimeError: grad can be implicitly created only for scalar outputs."""
import torch
from torch import nn

torch.manual_seed(0)
inputs = torch.randn(50, 2)
targets = inputs[:, :1] - inputs[:, 1:]
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(10):
    optimizer.zero_grad()
    errors = (model(inputs) - targets) ** 2
    errors.backward()  # BUG: GL111|GL204
    optimizer.step()
