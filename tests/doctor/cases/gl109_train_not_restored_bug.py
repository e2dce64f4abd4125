# expect: GL109@14
"""eval() for validation inside the epoch loop, train() never called again."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(60, 4)
y = (x.sum(1) > 0).long()
x_val, y_val = torch.randn(20, 4), torch.randint(0, 2, (20,))
model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()
for epoch in range(3):
    for i in range(0, 60, 20):  # BUG: GL109 (model.train() belongs at the start of the epoch)
        optimizer.zero_grad()
        loss = criterion(model(x[i:i + 20]), y[i:i + 20])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_val).argmax(1) == y_val).float().mean()
    print(epoch, acc.item())
