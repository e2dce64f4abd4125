# expect: GL116@15
"""The whole training step sits under no_grad: backward has no graph."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(10, 2), torch.randn(10, 1)
for epoch in range(3):
    with torch.no_grad():
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        try:
            loss.backward()  # BUG: GL116
        except RuntimeError as error:
            print("backward failed:", str(error)[:40])
        optimizer.step()
