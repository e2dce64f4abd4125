# expect: clean
"""detach() only for logging; the loss uses the live output."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.MSELoss()
x, y = torch.randn(20, 2), torch.randn(20, 1)
history = []
for epoch in range(3):
    optimizer.zero_grad()
    out = model(x)
    loss = criterion(out, y)
    loss.backward()
    optimizer.step()
    history.append(torch.tensor(out.detach().numpy()).mean().item())
    monitor = criterion(out.detach(), y).item()
