# expect: GL124@13
"""Setting requires_grad on child modules in a loop, inside a model class."""
import torch
from torch import nn


class FineTuner(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(8, 1)
        for layer in self.encoder.children():
            layer.requires_grad = False  # BUG: GL124

    def forward(self, x):
        return self.head(self.encoder(x))


model = FineTuner()
print(sum(p.requires_grad for p in model.parameters()))
