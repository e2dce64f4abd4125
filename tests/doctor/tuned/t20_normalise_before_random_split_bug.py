# expect: GL118@10
"""Features standardised with statistics of every row, then random_split into train/val (a leak)."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

torch.manual_seed(0)
data = torch.randn(200, 5) * torch.tensor([1.0, 10.0, 0.1, 5.0, 2.0])
target = data[:, :1] * 0.3
data = (data - data.mean(dim=0)) / data.std(dim=0)  # BUG: GL118
dataset = TensorDataset(data, target)
train_set, val_set = random_split(dataset, [160, 40])
train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
model = nn.Linear(5, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(3):
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
