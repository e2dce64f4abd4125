# expect: GL121@12
"""zero_grad/backward per batch, but step() only after the batch loop: only the last batch counts."""
import torch
import torch.nn as nn


def run_epoch(net, optimizer, batches):
    for xb, yb in batches:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(xb), yb)
        loss.backward()
    optimizer.step()  # BUG: GL121


torch.manual_seed(0)
net = nn.Linear(2, 1)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
batches = [(torch.randn(8, 2), torch.randn(8, 1)) for _ in range(4)]
for epoch in range(3):
    run_epoch(net, optimizer, batches)
