# expect: clean
"""train() is restored inside the train_epoch helper, eval() inside validate(): correct."""
import torch
from torch import nn


class Loop:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.05)
        self.loss_fn = nn.MSELoss()

    def train_epoch(self, x, y):
        self.model.train()
        for i in range(0, len(x), 10):
            self.opt.zero_grad()
            loss = self.loss_fn(self.model(x[i:i + 10]), y[i:i + 10])
            loss.backward()
            self.opt.step()

    def validate(self, x_val, y_val):
        self.model.eval()
        with torch.no_grad():
            return self.loss_fn(self.model(x_val), y_val).item()

    def fit(self, x, y, x_val, y_val, epochs=3):
        for epoch in range(epochs):
            self.train_epoch(x, y)
            print(epoch, self.validate(x_val, y_val))


torch.manual_seed(0)
Loop(nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.1), nn.Linear(8, 1))).fit(
    torch.randn(30, 2), torch.randn(30, 1), torch.randn(10, 2), torch.randn(10, 1))
