# expect: clean
"""Loader options unpacked from a config dict; a test() helper computes its own `loss` each epoch."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CONFIG = {"train": {"batch_size": 20, "shuffle": True}, "test": {"batch_size": 50}}
torch.manual_seed(0)
x = torch.randn(150, 3)
y = (x.norm(dim=1) > 1.5).long()
train_loader = DataLoader(TensorDataset(x[:100], y[:100]), **CONFIG["train"])
test_loader = DataLoader(TensorDataset(x[100:], y[100:]), **CONFIG["test"])
net = nn.Sequential(nn.Linear(3, 20), nn.ReLU(), nn.Linear(20, 2))
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()


def test(net, loader):
    net.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in loader:
            out = net(data)
            loss += criterion(out, target).item()
            correct += (out.argmax(1) == target).sum().item()
    return loss / len(loader), correct / len(loader.dataset)


for epoch in range(3):
    net.train()
    for data, target in train_loader:
        optimizer.zero_grad()
        loss = criterion(net(data), target)
        loss.backward()
        optimizer.step()
    print(epoch, test(net, test_loader))
