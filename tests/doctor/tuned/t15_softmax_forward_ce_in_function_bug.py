# expect: GL112|GL212@26
"""Softmax at the end of forward() in a class, CrossEntropyLoss in a separate train function.
Modelled on discuss.pytorch.org/t/cross-entropy-loss-is-not-decreasing/43814 (loss stuck near log(C))."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitNet(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.hidden = nn.Linear(12, 32)
        self.head = nn.Linear(32, classes)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        x = torch.relu(self.hidden(x))
        return self.softmax(self.head(x))


def train_epoch(net, loader, optimizer, criterion):
    net.train()
    for images, labels in loader:
        optimizer.zero_grad()
        scores = net(images)
        loss = criterion(scores, labels)  # BUG: GL112|GL212
        loss.backward()
        optimizer.step()
    return loss.item()


torch.manual_seed(0)
data = TensorDataset(torch.randn(128, 12), torch.randint(0, 5, (128,)))
loader = DataLoader(data, batch_size=32, shuffle=True)
net = DigitNet()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(3):
    print(train_epoch(net, loader, optimizer, nn.CrossEntropyLoss()))
