# expect: clean
"""Logits into BCEWithLogitsLoss; sigmoid probabilities into BCELoss; sigmoid for accuracy only."""
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(64, 5)
y = (X[:, 0] > 0).float().unsqueeze(1)
model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
with_logits, bce = nn.BCEWithLogitsLoss(), nn.BCELoss()
for epoch in range(5):
    optimizer.zero_grad()
    logits = model(X)
    loss = with_logits(logits, y) + bce(torch.sigmoid(logits), y)
    loss.backward()
    optimizer.step()
    accuracy = ((torch.sigmoid(logits) > 0.5).float() == y).float().mean()
