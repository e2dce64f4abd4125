# expect: GL106@15
"""StepLR(step_size=10 epochs) stepped inside the batch loop: it decays 4x too fast."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def train_one_epoch(model, loader, optimizer, scheduler, criterion):
    model.train()
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()  # BUG: GL106


torch.manual_seed(0)
train_dl = DataLoader(TensorDataset(torch.randn(40, 2), torch.randn(40, 1)), batch_size=10, shuffle=True)
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.1)
for epoch in range(3):
    train_one_epoch(model, train_dl, optimizer, scheduler, nn.MSELoss())
