# expect: clean
"""Transfer-learning style: the best weights are a deepcopy of the state_dict, named like a model (GL114 look-alike)."""
import copy
import os
import tempfile

import torch
from torch import nn

torch.manual_seed(0)
model_ft = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
optimizer_ft = torch.optim.SGD(model_ft.parameters(), lr=0.01, momentum=0.9)
criterion = nn.CrossEntropyLoss()
inputs, labels = torch.randn(40, 8), torch.randint(0, 2, (40,))
best_model_wts = copy.deepcopy(model_ft.state_dict())
best_loss = float("inf")
for epoch in range(6):
    optimizer_ft.zero_grad()
    loss = criterion(model_ft(inputs), labels)
    loss.backward()
    optimizer_ft.step()
    if loss.item() < best_loss:
        best_loss = loss.item()
        best_model_wts = copy.deepcopy(model_ft.state_dict())
model_state = model_ft.state_dict()
folder = tempfile.mkdtemp()
torch.save(best_model_wts, os.path.join(folder, "best.pt"))
torch.save(model_state, os.path.join(folder, "last.pt"))
model_ft.load_state_dict(torch.load(os.path.join(folder, "best.pt"), weights_only=True))
