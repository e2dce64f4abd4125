# expect: GL110|GL215@20
"""Training history: `total += loss` (a tensor) in a method; memory grows with every batch of the epoch."""
import torch
from torch import nn


class Fitter:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        self.history = []

    def epoch(self, batches):
        total = 0.0
        for features, target in batches:
            self.optimizer.zero_grad()
            loss = nn.functional.smooth_l1_loss(self.model(features), target)
            loss.backward()
            self.optimizer.step()
            total += loss  # BUG: GL110|GL215
        self.history.append(total / len(batches))


torch.manual_seed(0)
batches = [(torch.randn(16, 3), torch.randn(16, 1)) for _ in range(6)]
fitter = Fitter(nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)))
for _ in range(3):
    fitter.epoch(batches)
print(fitter.history)
