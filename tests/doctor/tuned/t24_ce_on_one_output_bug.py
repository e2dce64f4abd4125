# expect: GL113|GL206@16
"""Binary labels with CrossEntropyLoss on a model with one output: log_softmax over one column is 0, so the loss
is identically 0 and nothing is learnt (the bug the doctor found in an official example)."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(100, 3)
y = (x[:, 0] > 0).long()
model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(10):
    optimizer.zero_grad()
    logits = model(x)
    loss = loss_fn(logits, y.unsqueeze(1).float())  # BUG: GL113|GL206
    loss.backward()
    optimizer.step()
