# expect: GL119@11
"""The training DataLoader keeps the (sorted) order every epoch."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.sort(torch.randn(64, 1), dim=0).values
y = 3 * x
train_ds = TensorDataset(x, y)
loader = DataLoader(train_ds, batch_size=16)  # BUG: GL119
model = nn.Linear(1, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(xb), yb)
        loss.backward()
        optimizer.step()
