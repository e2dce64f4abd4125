# expect: clean
"""OneCycleLR and a warmup LambdaLR per batch, StepLR and ReduceLROnPlateau per epoch, all after step()."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randn(40, 2), torch.randn(40, 1)), batch_size=10, shuffle=True)
model = nn.Linear(2, 1)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
onecycle = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, epochs=3, steps_per_epoch=len(loader))
warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 5))
per_epoch = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.9)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=1)
loss_fn = nn.MSELoss()
for epoch in range(3):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        onecycle.step()
        warmup.step()
    per_epoch.step()
    model.eval()
    with torch.no_grad():
        val = sum(loss_fn(model(xb), yb).item() for xb, yb in loader)
    plateau.step(val)
