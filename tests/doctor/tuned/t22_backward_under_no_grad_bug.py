# expect: GL116|GL214@16
"""The whole epoch is wrapped in torch.no_grad() 'to save memory', training step included.
RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Linear(10, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(80, 5), torch.randn(80, 1)


def train_step(inputs, targets):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(inputs), targets)
    loss.backward()  # BUG: GL116|GL214
    optimizer.step()
    return loss.item()


with torch.no_grad():
    for epoch in range(5):
        for start in range(0, 80, 16):
            train_step(x[start:start + 16], y[start:start + 16])
