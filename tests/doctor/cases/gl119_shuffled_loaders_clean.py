# expect: clean
"""Train loader shuffles (or uses a sampler); the validation loader need not."""
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

torch.manual_seed(0)
train_ds = TensorDataset(torch.randn(48, 2), torch.randn(48, 1))
val_ds = TensorDataset(torch.randn(16, 2), torch.randn(16, 1))
train_loader = DataLoader(train_ds, batch_size=16, shuffle=True)
sampled_loader = DataLoader(train_ds, batch_size=16, sampler=RandomSampler(train_ds))
val_loader = DataLoader(val_ds, batch_size=16, shuffle=False)
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    model.train()
    for loader in (train_loader, sampled_loader):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        val = sum(nn.functional.mse_loss(model(xb), yb).item() for xb, yb in val_loader)
