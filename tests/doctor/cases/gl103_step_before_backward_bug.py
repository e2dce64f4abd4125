# expect: GL103@17
"""step() is called before backward(): each update uses the previous batch's gradients."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(60, 3)
y = x.sum(1, keepdim=True)
net = nn.Linear(3, 1)
optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
loss_function = nn.MSELoss()
for epoch in range(3):
    for i in range(0, 60, 15):
        optimizer.zero_grad()
        output = net(x[i:i + 15])
        loss = loss_function(output, y[i:i + 15])
        optimizer.step()  # BUG: GL103
        loss.backward()
