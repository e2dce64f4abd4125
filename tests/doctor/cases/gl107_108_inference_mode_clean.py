# expect: clean
"""Validation under inference_mode with eval(); a decorated evaluate() helper; train() restored."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


@torch.no_grad()
def evaluate(model, loader, loss_fn):
    model.eval()
    total = 0.0
    for xb, yb in loader:
        total += loss_fn(model(xb), yb).item()
    return total / len(loader)


torch.manual_seed(0)
train_loader = DataLoader(TensorDataset(torch.randn(40, 3), torch.randn(40, 1)), batch_size=8, shuffle=True)
valid_loader = DataLoader(TensorDataset(torch.randn(16, 3), torch.randn(16, 1)), batch_size=8)
model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.1), nn.Linear(8, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.MSELoss()
for epoch in range(2):
    model.train()
    for xb, yb in train_loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    print("val", evaluate(model, valid_loader, loss_fn))
    model.eval()
    with torch.inference_mode():
        val_total = 0.0
        for xb, yb in valid_loader:
            val_total += loss_fn(model(xb), yb).item()
