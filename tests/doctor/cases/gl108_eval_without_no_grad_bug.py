# expect: GL108@19
"""eval() is called, but validation still records autograd graphs."""
import torch
from torch import nn

torch.manual_seed(0)
X_train, y_train = torch.randn(50, 2), torch.randn(50, 1)
X_val, y_val = torch.randn(20, 2), torch.randn(20, 1)
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.MSELoss()
for epoch in range(5):
    model.train()
    opt.zero_grad()
    loss = loss_fn(model(X_train), y_train)
    loss.backward()
    opt.step()
    model.eval()
    val_loss = loss_fn(model(X_val), y_val)  # BUG: GL108
    print(epoch, loss.item(), val_loss.item())
