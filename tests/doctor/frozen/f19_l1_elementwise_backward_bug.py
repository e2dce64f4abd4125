# expect: GL111|GL204@15
"""A per-sample absolute error passed to backward() without a reduction."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randn(64, 3), torch.randn(64, 2)), batch_size=16, shuffle=True)
model = nn.Linear(3, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for inputs, targets in loader:
        optimizer.zero_grad()
        per_sample = (model(inputs) - targets).abs().sum(dim=1)
        per_sample.backward()  # BUG: GL111|GL204
        optimizer.step()
