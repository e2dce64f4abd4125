# expect: GL101|GL201@23
"""A train(model, device, loader, optimizer, epoch) function in the style of the MNIST example, without zero_grad."""
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.fc2 = nn.Linear(32, 5)

    def forward(self, x):
        return F.log_softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


def train(model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        output = model(data)  # BUG: GL101|GL201
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % 2 == 0:
            print(f"epoch {epoch} batch {batch_idx} loss {loss.item():.3f}")


torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randn(96, 20), torch.randint(0, 5, (96,))), batch_size=32, shuffle=True)
model = Net()
optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
for epoch in range(1, 3):
    train(model, "cpu", loader, optimizer, epoch)
