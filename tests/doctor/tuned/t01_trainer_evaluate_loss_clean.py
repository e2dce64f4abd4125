# expect: clean
"""Class-based trainer whose evaluate() assigns its own `loss`, called inside the epoch loop (GL121 look-alike)."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Trainer:
    def __init__(self, model, train_loader, val_loader, lr=1e-2):
        self.model = model
        self.train_loader, self.val_loader = train_loader, val_loader
        self.criterion = nn.MSELoss()
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def evaluate(self):
        self.model.eval()
        total = 0.0
        with torch.no_grad():
            for inputs, targets in self.val_loader:
                loss = self.criterion(self.model(inputs), targets)
                total += loss.item()
        return total / len(self.val_loader)

    def fit(self, epochs):
        for epoch in range(epochs):
            self.model.train()
            for inputs, targets in self.train_loader:
                self.optimizer.zero_grad()
                loss = self.criterion(self.model(inputs), targets)
                loss.backward()
                self.optimizer.step()
            val_loss = self.evaluate()
            print(f"epoch {epoch}: train {loss.item():.3f} val {val_loss:.3f}")


torch.manual_seed(0)
x = torch.randn(96, 5)
y = x.sum(dim=1, keepdim=True)
train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16, shuffle=True)
val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16)
model = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 1))
Trainer(model, train, val).fit(3)
