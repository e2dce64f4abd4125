# expect: GL110|GL215@17
"""The running loss is accumulated as a tensor, so every batch's graph stays alive until the epoch ends.
Modelled on the PyTorch FAQ 'my model reports out of memory' (don't accumulate history across the loop)."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def run_epoch(model, loader, criterion, optimizer):
    model.train()
    epoch_loss = 0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
        epoch_loss += loss  # BUG: GL110|GL215
    return epoch_loss / len(loader)


torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randn(128, 4), torch.randn(128, 1)), batch_size=16, shuffle=True)
model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(3):
    print(run_epoch(model, loader, nn.MSELoss(), optimizer))
