# expect: GL129|GL207@14
"""A hand-written binary cross-entropy on unscaled inputs: sigmoid saturates to exactly 0/1, log gives -inf, NaN."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(64, 4) * 200
y = (x[:, 0] > 0).float().unsqueeze(1)
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(10):
    optimizer.zero_grad()
    p = torch.sigmoid(model(x))
    loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()  # BUG: GL129|GL207
    loss.backward()
    optimizer.step()
print(loss.item())
