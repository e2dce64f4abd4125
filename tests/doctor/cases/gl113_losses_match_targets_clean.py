# expect: clean
"""CE with class indices and several outputs; MSE with a float regression target."""
import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(50, 3)
y_cls = torch.randint(0, 3, (50,))
y_reg = 2 * x[:, :1] + 1
clf = nn.Linear(3, 3)
reg = nn.Linear(3, 1)
opt = torch.optim.SGD(list(clf.parameters()) + list(reg.parameters()), lr=0.1)
ce, mse = nn.CrossEntropyLoss(), nn.MSELoss()
for epoch in range(5):
    opt.zero_grad()
    loss = ce(clf(x), y_cls) + mse(reg(x), y_reg)
    loss.backward()
    opt.step()
