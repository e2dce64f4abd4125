# expect: clean
"""DataLoader options come from a dict (**kwargs), shuffle included (GL119 look-alike)."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
features = torch.randn(200, 4)
labels = (features[:, 0] > 0).float().unsqueeze(1)
train_set = TensorDataset(features[:160], labels[:160])
loader_kwargs = {"batch_size": 32, "shuffle": True, "drop_last": True}
train_loader = DataLoader(train_set, **loader_kwargs)

model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
loss_fn = nn.BCEWithLogitsLoss()
for epoch in range(3):
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
print(loss.item())
