# expect: GL127@12
"""detach() on the output inside the loss call."""
import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(2, 1)
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
x, y = torch.randn(20, 2), torch.randn(20, 1)
for epoch in range(3):
    opt.zero_grad()
    loss = nn.functional.l1_loss(net(x).detach().requires_grad_(), y)  # BUG: GL127
    loss.backward()
    opt.step()
