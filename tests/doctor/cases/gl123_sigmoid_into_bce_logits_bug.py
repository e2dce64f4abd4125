# expect: GL123@15
"""nn.Sigmoid at the end of the model, and BCEWithLogitsLoss on top."""
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(64, 5)
y = (X[:, 0] > 0).float().unsqueeze(1)
model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.BCEWithLogitsLoss()
for epoch in range(5):
    optimizer.zero_grad()
    probs = model(X)
    loss = loss_fn(probs, y)  # BUG: GL123
    loss.backward()
    optimizer.step()
