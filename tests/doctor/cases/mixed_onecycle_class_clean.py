# expect: clean
"""A class model, OneCycleLR per batch, zero_grad after forward, summed test loss with .item(), dict checkpoint."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(64, 5)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.fc1(x))))


CKPT = __import__("tempfile").mktemp(suffix=".pt")


def run():
    torch.manual_seed(0)
    X = torch.randn(600, 20)
    y = torch.randint(0, 5, (600,))
    train_ds = TensorDataset(X[:500], y[:500])
    test_ds = TensorDataset(X[500:], y[500:])
    train_loader = DataLoader(train_ds, batch_size=50, shuffle=True)
    test_loader = DataLoader(test_ds, batch_size=100)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=3 * len(train_loader))
    best_acc = 0.0
    for epoch in range(3):
        model.train()
        for batch_idx, (data, target) in enumerate(train_loader):
            output = model(data)
            loss = F.cross_entropy(output, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            if batch_idx % 5 == 0:
                print(f"epoch {epoch} batch {batch_idx} loss {loss.item():.4f}")
        model.eval()
        correct = 0
        test_loss = 0.0
        with torch.no_grad():
            for data, target in test_loader:
                output = model(data)
                test_loss += F.cross_entropy(output, target, reduction="sum").item()
                correct += (output.argmax(dim=1) == target).sum().item()
        acc = correct / len(test_ds)
        if acc > best_acc:
            best_acc = acc
            torch.save({"epoch": epoch, "model_state_dict": model.state_dict(),
                        "optimizer_state_dict": optimizer.state_dict()}, CKPT)
    ckpt = torch.load(CKPT, weights_only=True)
    model.load_state_dict(ckpt["model_state_dict"])


if __name__ == "__main__":
    run()
