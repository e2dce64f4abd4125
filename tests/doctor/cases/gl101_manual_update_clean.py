# expect: clean
"""Manual SGD with autograd: update under no_grad, then clear .grad by hand."""
import torch

torch.manual_seed(0)
x = torch.linspace(-1, 1, 20)
y = 3 * x - 0.5
w = torch.zeros(1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
lr = 0.1
for step in range(50):
    loss = ((w * x + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= lr * w.grad
        b -= lr * b.grad
    w.grad.zero_()
    b.grad = None
print(w.item(), b.item())
