# expect: GL107@18
"""evaluate() has no_grad but never switches to eval mode (dropout stays on)."""
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))

    def forward(self, x):
        return self.body(x)


@torch.no_grad()
def evaluate(net, inputs, labels):
    logits = net(inputs)  # BUG: GL107
    return (logits.argmax(1) == labels).float().mean().item()


def train(net, inputs, labels, epochs=3):
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(epochs):
        net.train()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(inputs), labels)
        loss.backward()
        opt.step()


torch.manual_seed(0)
x_tr, y_tr = torch.randn(30, 3), torch.randint(0, 2, (30,))
x_val, y_val = torch.randn(10, 3), torch.randint(0, 2, (10,))
net = Net()
train(net, x_tr, y_tr)
print(evaluate(net, x_val, y_val))
