# expect: clean
"""CosineAnnealingLR sized in batches (T_max = epochs * len(loader)) may step per batch."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
epochs = 3
train_loader = DataLoader(TensorDataset(torch.randn(30, 2), torch.randn(30, 1)), batch_size=10, shuffle=True)
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train_loader))
for epoch in range(epochs):
    for xb, yb in train_loader:
        optimizer.zero_grad()
        nn.functional.mse_loss(model(xb), yb).backward()
        optimizer.step()
        scheduler.step()
