# expect: GL123|GL213@26
"""A module with sigmoid in forward(); the trainer's method calls F.binary_cross_entropy_with_logits on it."""
import torch
import torch.nn.functional as F
from torch import nn


class ClickModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.user = nn.Embedding(20, 8)
        self.item = nn.Embedding(30, 8)

    def forward(self, users, items):
        return torch.sigmoid((self.user(users) * self.item(items)).sum(-1))


class ClickTrainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def train_batch(self, users, items, clicked):
        self.optimizer.zero_grad()
        p = self.model(users, items)
        loss = F.binary_cross_entropy_with_logits(p, clicked)  # BUG: GL123|GL213
        loss.backward()
        self.optimizer.step()
        return loss.item()


torch.manual_seed(0)
trainer = ClickTrainer(ClickModel())
for step in range(10):
    users, items = torch.randint(0, 20, (64,)), torch.randint(0, 30, (64,))
    trainer.train_batch(users, items, torch.randint(0, 2, (64,)).float())
