# expect: GL129@14
"""Hand-written binary cross-entropy on sigmoid probabilities, no clamp."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(32, 3)
y = (x[:, :1] > 0).float()
for epoch in range(5):
    optimizer.zero_grad()
    p = torch.sigmoid(model(x))
    loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()  # BUG: GL129
    loss.backward()
    optimizer.step()
