# expect: GL125|GL203@20
"""The optimizer is created for a first model; a wider model then replaces it (`net = Net(hidden=64)`)."""
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.layers(x)


torch.manual_seed(0)
net = Net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
criterion = nn.MSELoss()
net = Net(hidden=64)  # BUG: GL125|GL203
x, y = torch.randn(64, 3), torch.randn(64, 1)
for epoch in range(10):
    optimizer.zero_grad()
    loss = criterion(net(x), y)
    loss.backward()
    optimizer.step()
