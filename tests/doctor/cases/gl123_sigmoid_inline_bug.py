# expect: GL123@14
"""torch.sigmoid applied to the logits before BCEWithLogitsLoss."""
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
net = nn.Linear(3, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
x = torch.randn(32, 3)
t = (x.sum(1, keepdim=True) > 0).float()
for it in range(10):
    opt.zero_grad()
    loss = F.binary_cross_entropy_with_logits(torch.sigmoid(net(x)), t)  # BUG: GL123
    loss.backward()
    opt.step()
