# expect: GL120@14
"""backward() every batch but the optimizer never steps."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(3, 1)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.MSELoss()
x, y = torch.randn(30, 3), torch.randn(30, 1)
for epoch in range(5):
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()  # BUG: GL120
    print(epoch, loss.item())
