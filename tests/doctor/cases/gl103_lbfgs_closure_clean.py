# expect: clean
"""LBFGS with a closure: step(closure) runs backward inside the closure; correct."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(30, 2)
y = x @ torch.tensor([[0.5], [1.5]])
model = nn.Linear(2, 1)
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=5)
criterion = nn.MSELoss()
for epoch in range(3):
    def closure():
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        return loss

    optimizer.step(closure)
print(criterion(model(x), y).item())
