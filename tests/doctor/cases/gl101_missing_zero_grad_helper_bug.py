# expect: GL101@8
"""A helper function does the step; nobody clears the gradients."""
import torch
import torch.nn as nn


def train_step(net, opt, loss_fn, inputs, targets):
    out = net(inputs)  # BUG: GL101 (zero_grad belongs before the forward pass)
    loss = loss_fn(out, targets)
    loss.backward()
    opt.step()
    return loss.item()


def main():
    torch.manual_seed(1)
    inputs = torch.randn(40, 3)
    targets = inputs.sum(dim=1, keepdim=True)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = nn.MSELoss()
    step = 0
    while step < 20:
        train_step(net, opt, loss_fn, inputs, targets)
        step += 1


if __name__ == "__main__":
    main()
