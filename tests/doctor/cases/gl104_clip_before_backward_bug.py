# expect: GL104@16
"""Clipping before backward: there is nothing to clip yet."""
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(48, 2)
Y = (X[:, 0] > 0).long()
model = nn.Linear(2, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.CrossEntropyLoss()
epoch = 0
while epoch < 5:
    optimizer.zero_grad()
    logits = model(X)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # BUG: GL104
    loss = loss_fn(logits, Y)
    loss.backward()
    optimizer.step()
    epoch += 1
