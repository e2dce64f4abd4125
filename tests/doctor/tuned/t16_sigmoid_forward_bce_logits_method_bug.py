# expect: GL123|GL213@26
"""The model's forward() ends in sigmoid; the trainer's method uses BCEWithLogitsLoss (a double sigmoid)."""
import torch
from torch import nn


class SpamModel(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(features, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x):
        logits = self.layers(x)
        return torch.sigmoid(logits)


class Runner:
    def __init__(self, model):
        self.model = model
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step(self, x, y):
        self.opt.zero_grad()
        probs = self.model(x)
        loss = self.loss_fn(probs, y)  # BUG: GL123|GL213
        loss.backward()
        self.opt.step()
        return loss.item()


torch.manual_seed(0)
x = torch.randn(64, 7)
y = (x[:, 0] + x[:, 1] > 0).float().unsqueeze(1)
runner = Runner(SpamModel(7))
for epoch in range(20):
    runner.step(x, y)
