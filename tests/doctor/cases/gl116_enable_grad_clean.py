# expect: clean
"""A no_grad block for logging, then training with grad enabled; enable_grad inside no_grad."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(10, 2), torch.randn(10, 1)
for epoch in range(3):
    with torch.no_grad():
        before = model.weight.clone()
        with torch.enable_grad():
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
    print((model.weight - before).abs().sum().item())
