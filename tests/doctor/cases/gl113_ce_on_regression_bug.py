# expect: GL113@14
"""CrossEntropyLoss on a single continuous output: the loss is always 0."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(50, 3)
y = 2 * x[:, :1] + 1
model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()
for epoch in range(5):
    optimizer.zero_grad()
    loss = criterion(model(x), y)  # BUG: GL113
    loss.backward()
    optimizer.step()
