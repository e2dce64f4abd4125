# expect: clean
"""The Dataset draws a random window itself, so the training DataLoader needs no shuffle (GL119 look-alike)."""
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class RandomWindows(Dataset):
    def __init__(self, series, window, length):
        self.series, self.window, self.length = series, window, length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        start = torch.randint(0, len(self.series) - self.window - 1, (1,)).item()
        chunk = self.series[start:start + self.window + 1]
        return chunk[:-1], chunk[-1:]


torch.manual_seed(0)
series = torch.sin(torch.linspace(0, 20, 500))
train_loader = DataLoader(RandomWindows(series, 16, 256), batch_size=32)
model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(2):
    for window, next_value in train_loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(window), next_value)
        loss.backward()
        optimizer.step()
print(loss.item())
