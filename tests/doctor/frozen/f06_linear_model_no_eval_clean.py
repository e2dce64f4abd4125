# expect: clean
"""Logistic regression evaluated under no_grad without model.eval(): it has no dropout or batch-norm."""
import torch
from torch import nn


class LogReg(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.linear = nn.Linear(d, 1)

    def forward(self, x):
        return self.linear(x)


torch.manual_seed(0)
X = torch.randn(200, 10)
Y = (X[:, :3].sum(1, keepdim=True) > 0).float()
X_train, Y_train, X_test, Y_test = X[:150], Y[:150], X[150:], Y[150:]
clf = LogReg(10)
opt = torch.optim.LBFGS(clf.parameters(), lr=0.5, max_iter=10)
bce = nn.BCEWithLogitsLoss()


def closure():
    opt.zero_grad()
    loss = bce(clf(X_train), Y_train)
    loss.backward()
    return loss


for epoch in range(3):
    opt.step(closure)
    with torch.no_grad():
        acc = ((clf(X_test) > 0).float() == Y_test).float().mean()
    print(epoch, acc.item())
