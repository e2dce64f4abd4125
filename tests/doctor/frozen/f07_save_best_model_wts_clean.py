# expect: clean
"""Best weights kept as `best_model = copy.deepcopy(net.state_dict())` and saved; reloaded with weights_only."""
import copy
import io

import torch
from torch import nn

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(5, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Linear(10, 1))
optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
x, y = torch.randn(64, 5), torch.randn(64, 1)
x_val, y_val = torch.randn(32, 5), torch.randn(32, 1)
best_score, best_model = float("inf"), None
for epoch in range(5):
    net.train()
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(net(x), y)
    loss.backward()
    optimizer.step()
    net.eval()
    with torch.no_grad():
        score = nn.functional.mse_loss(net(x_val), y_val).item()
    if score < best_score:
        best_score, best_model = score, copy.deepcopy(net.state_dict())
buffer = io.BytesIO()
torch.save(best_model, buffer)
buffer.seek(0)
net.load_state_dict(torch.load(buffer, weights_only=True))
