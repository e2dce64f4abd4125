# expect: GL109|GL209@29
"""validate() switches to eval mode; the loop calls model.train() once before the epochs, so epoch 2+ trains
without dropout."""
import torch
from torch import nn


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 1))

    def forward(self, x):
        return self.net(x)


def validate(model, x_val, y_val):
    model.eval()
    with torch.no_grad():
        return nn.functional.mse_loss(model(x_val), y_val).item()


torch.manual_seed(0)
x, y = torch.randn(160, 8), torch.randn(160, 1)
model = Regressor()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
model.train()
for epoch in range(4):
    for start in range(0, 128, 32):  # BUG: GL109|GL209
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x[start:start + 32]), y[start:start + 32])
        loss.backward()
        optimizer.step()
    print(epoch, validate(model, x[128:], y[128:]))
