# expect: GL121@16
"""The loss is computed per batch but backward/step sit after the batch loop."""
import torch
from torch import nn

torch.manual_seed(0)
x, y = torch.randn(40, 2), torch.randn(40, 1)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
crit = nn.MSELoss()
for epoch in range(3):
    opt.zero_grad()
    for i in range(0, 40, 10):
        out = model(x[i:i + 10])
        loss = crit(out, y[i:i + 10])
    loss.backward()  # BUG: GL121
    opt.step()
