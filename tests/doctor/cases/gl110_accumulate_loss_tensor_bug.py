# expect: GL110@18
"""running_loss += loss keeps every batch's graph alive."""
import torch
from torch import nn

torch.manual_seed(0)
x, y = torch.randn(64, 3), torch.randn(64, 1)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
criterion = nn.MSELoss()
for epoch in range(2):
    running_loss = 0.0
    for i in range(0, 64, 16):
        optimizer.zero_grad()
        loss = criterion(model(x[i:i + 16]), y[i:i + 16])
        loss.backward()
        optimizer.step()
        running_loss += loss  # BUG: GL110
    print(epoch, float(running_loss) / 4)
