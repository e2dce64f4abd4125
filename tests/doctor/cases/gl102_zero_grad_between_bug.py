# expect: GL102@19
"""zero_grad slipped between backward and step: the model never learns."""
import torch
from torch import nn, optim

torch.manual_seed(0)
features = torch.randn(80, 4)
labels = torch.randint(0, 3, (80,))
classifier = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
opt = optim.Adam(classifier.parameters(), lr=1e-2)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(4):
    perm = torch.randperm(80)
    for start in range(0, 80, 20):
        idx = perm[start:start + 20]
        logits = classifier(features[idx])
        loss = loss_fn(logits, labels[idx])
        loss.backward()
        opt.zero_grad()  # BUG: GL102
        opt.step()
