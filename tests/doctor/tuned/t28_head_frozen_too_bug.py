# expect: GL124|GL202|GL214@22
"""Fine-tuning: the new head is attached first, then every parameter is frozen, head included, so nothing trains.
RuntimeError: element 0 of tensors does not require grad (a frequent forum thread)."""
import torch
from torch import nn


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(10, 32), nn.ReLU())
        self.fc = nn.Linear(32, 100)

    def forward(self, x):
        return self.fc(self.features(x))


torch.manual_seed(0)
model = Backbone()
model.fc = nn.Linear(32, 4)
for param in model.parameters():
    param.requires_grad = False  # BUG: GL124|GL202|GL214
optimizer = torch.optim.Adam(model.fc.parameters(), lr=1e-3)
x, y = torch.randn(32, 10), torch.randint(0, 4, (32,))
for epoch in range(5):
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
