# expect: clean
"""Accelerate-style loop: accelerator.prepare / accelerator.backward (a tiny stand-in when accelerate is absent)."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

try:
    from accelerate import Accelerator
except ImportError:
    class Accelerator:
        device = torch.device("cpu")

        def prepare(self, *objects):
            return objects

        def backward(self, loss):
            loss.backward()

        def clip_grad_norm_(self, parameters, max_norm):
            return torch.nn.utils.clip_grad_norm_(parameters, max_norm)


accelerator = Accelerator()
torch.manual_seed(0)
dataset = TensorDataset(torch.randn(96, 10), torch.randint(0, 4, (96,)))
model = nn.Sequential(nn.Linear(10, 32), nn.GELU(), nn.Linear(32, 4))
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=3 * 6)
loader = DataLoader(dataset, batch_size=16, shuffle=True)
model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
for epoch in range(3):
    model.train()
    for inputs, labels in loader:
        logits = model(inputs)
        loss = nn.functional.cross_entropy(logits, labels)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
