# expect: clean
"""clip_grad_value_ and clip_grad_norm_ between backward and step, the lesson's order."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(32, 3)
y = x.mean(1, keepdim=True)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.MSELoss()
for epoch in range(4):
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
print(loss.item())
