# expect: clean
"""zero_grad at the end of the loop, via the model, and set_to_none: all correct."""
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(50, 2)
Y = X @ torch.tensor([[1.0], [-1.0]])
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
mse = nn.MSELoss()
for epoch in range(5):
    for i in range(0, 50, 10):
        loss = mse(model(X[i:i + 10]), Y[i:i + 10])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
for epoch in range(5):
    model.zero_grad()
    loss = mse(model(X), Y)
    loss.backward()
    opt.step()
print(loss.item())
