# expect: clean
"""Accumulate loss.item(); and a deliberate sum of two loss terms before backward."""
import torch
from torch import nn

torch.manual_seed(0)
x, y = torch.randn(64, 3), torch.randn(64, 1)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
criterion = nn.MSELoss()
for epoch in range(2):
    epoch_loss = 0.0
    for i in range(0, 64, 16):
        optimizer.zero_grad()
        out = model(x[i:i + 16])
        total = criterion(out, y[i:i + 16])
        total += 0.01 * out.pow(2).mean()
        total.backward()
        optimizer.step()
        epoch_loss += total.item() * 16
        epoch_loss += total.detach().item() * 0
    print(epoch, epoch_loss / 64)
