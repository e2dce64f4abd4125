# expect: GL102@17
"""A trainer class; the zero_grad is in the wrong place inside its method."""
import torch
import torch.nn as nn


class Trainer:
    def __init__(self, model, lr=0.01):
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        self.criterion = nn.MSELoss()

    def train_batch(self, xb, yb):
        self.model.train()
        loss = self.criterion(self.model(xb), yb)
        loss.backward()
        self.model.zero_grad()  # BUG: GL102
        self.optimizer.step()
        return loss.item()

    def fit(self, x, y, epochs=3):
        for _ in range(epochs):
            for i in range(0, len(x), 8):
                self.train_batch(x[i:i + 8], y[i:i + 8])


torch.manual_seed(0)
data_x = torch.randn(32, 2)
data_y = data_x[:, :1] * 2
Trainer(nn.Linear(2, 1)).fit(data_x, data_y)
