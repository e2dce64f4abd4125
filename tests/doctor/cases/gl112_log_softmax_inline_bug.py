# expect: GL112@15
"""log_softmax applied right before F.cross_entropy."""
import torch
from torch import nn
from torch.nn import functional as fn

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Linear(10, 4))
opt = torch.optim.SGD(net.parameters(), lr=0.1)
data, labels = torch.randn(40, 5), torch.randint(0, 4, (40,))
for step in range(10):
    opt.zero_grad()
    logits = net(data)
    probs = torch.log_softmax(logits, dim=-1)
    loss = fn.cross_entropy(probs, labels)  # BUG: GL112
    loss.backward()
    opt.step()
