# expect: clean
"""Class-based trainer with train/fit methods and a scheduler; all in the right order."""
import torch
from torch import nn


class Trainer:
    def __init__(self, model, lr=1e-2, epochs=3):
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=0.9)
        self.loss_fn = nn.CrossEntropyLoss()
        self.epochs = epochs

    def train(self, batches):
        self.model.train()
        running = 0.0
        for inputs, labels in batches:
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(inputs), labels)
            loss.backward()
            self.optimizer.step()
            running += loss.item()
        return running / len(batches)

    @torch.no_grad()
    def test(self, batches):
        self.model.eval()
        correct = sum((self.model(x).argmax(1) == y).sum().item() for x, y in batches)
        return correct / sum(len(y) for _, y in batches)

    def fit(self, train_batches, test_batches):
        for epoch in range(self.epochs):
            loss = self.train(train_batches)
            self.scheduler.step()
            print(epoch, loss, self.test(test_batches))


torch.manual_seed(0)
make = lambda n: [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(n)]  # noqa: E731
trainer = Trainer(nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)))
trainer.fit(make(4), make(2))
