# expect: GL207@15
"""A masked loss divided by the mask count; batches with no valid target divide 0 by 0 and the loss is NaN."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(4, 1)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
x = torch.randn(40, 4)
y = torch.randn(40, 1)
valid = torch.zeros(40, 1)
for epoch in range(5):
    optimizer.zero_grad()
    squared = (model(x) - y) ** 2 * valid
    loss = squared.sum() / valid.sum()  # BUG: GL207
    loss.backward()
    optimizer.step()
