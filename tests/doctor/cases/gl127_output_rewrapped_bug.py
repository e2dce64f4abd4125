# expect: GL127@14
"""The prediction is re-wrapped with torch.tensor before the loss: no gradient reaches the model."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.MSELoss()
x, y = torch.randn(20, 2), torch.randn(20, 1)
for epoch in range(3):
    optimizer.zero_grad()
    out = model(x)
    pred = torch.tensor(out.detach().numpy(), requires_grad=True)  # BUG: GL127
    loss = criterion(pred, y)
    loss.backward()
    optimizer.step()
