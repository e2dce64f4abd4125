# expect: clean
"""After training, the best weights are reloaded into a fresh model for the test set (GL125 look-alike)."""
import copy
import os
import tempfile

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return self.body(x)


torch.manual_seed(0)
x, y = torch.randn(120, 6), torch.randint(0, 3, (120,))
x_train, y_train, x_val, y_val, x_test, y_test = x[:80], y[:80], x[80:100], y[80:100], x[100:], y[100:]
model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()
best, best_path = float("inf"), os.path.join(tempfile.mkdtemp(), "best.pt")
for epoch in range(8):
    model.train()
    optimizer.zero_grad()
    loss = criterion(model(x_train), y_train)
    loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        val_loss = criterion(model(x_val), y_val).item()
    if val_loss < best:
        best = val_loss
        torch.save(copy.deepcopy(model.state_dict()), best_path)

model = Net()
model.load_state_dict(torch.load(best_path, weights_only=True))
model.eval()
with torch.no_grad():
    accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
print(f"test accuracy {accuracy:.2f}")
