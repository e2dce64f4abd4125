# expect: clean
"""Deliberate gradient accumulation (loss scaled, zero_grad every k) and inference_mode validation."""
import torch
from torch import nn

model = nn.Linear(10, 1)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.MSELoss()
accum = 4
data = [(torch.randn(8, 10), torch.randn(8, 1)) for _ in range(16)]
x_val, y_val = torch.randn(32, 10), torch.randn(32, 1)
for epoch in range(2):
    model.train()
    optimizer.zero_grad()
    for i, (inputs, targets) in enumerate(data):
        loss = criterion(model(inputs), targets) / accum
        loss.backward()
        if (i + 1) % accum == 0:
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    with torch.inference_mode():
        val_loss = criterion(model(x_val), y_val).item()
    print(epoch, val_loss)
