"""Build notebooks/training_loop.ipynb: lesson 000's six practice exercises, guided -> independent.

Each exercise is a prompt, a code cell (shipped with a working answer so the notebook runs top to bottom),
and a check cell that prints whether the answer is right. Run `python notebooks/build_notebook.py` to
regenerate; the output is deterministic (no execution counts, no outputs).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
TARGET = HERE / "training_loop.ipynb"

CELLS: list[tuple[str, str]] = [
    ("md", """# The training loop — practice (lesson 000)

Same heartbeat, new instruments: **forward → loss → backward → update**, now with `nn.MSELoss` and `torch.optim`.

Six exercises, from guided to independent. Each code cell ships with a working answer; clear it and write your
own, then run the **check** cell below it. A check prints `right` or `not yet` with a hint."""),
    ("code", """import torch
from torch import nn

torch.manual_seed(0)


def check(exercise: str, ok: bool, hint: str = "") -> None:
    \"\"\"Print whether an exercise's answer is right.\"\"\"
    print(f"{exercise}: right" if ok else f"{exercise}: not yet - {hint}")"""),
    # ---------------------------------------------------------------- 1
    ("md", """## Exercise 1 (guided): `nn.MSELoss` is the MSE formula you know

Compute the mean squared error of `y_hat` against `y` twice: by hand, `((y_hat - y)**2).mean()`, and with
`nn.MSELoss()`. Store them in `manual` and `library`."""),
    ("code", """y_hat = torch.tensor([2.5, 0.0, 2.1, 7.8])
y = torch.tensor([3.0, -0.5, 2.0, 7.0])

manual = ((y_hat - y) ** 2).mean()
criterion = nn.MSELoss()
library = criterion(y_hat, y)
print(f"manual {manual.item():.6f}   nn.MSELoss {library.item():.6f}")"""),
    ("code", """check("exercise 1", torch.allclose(manual, library) and abs(manual.item() - 0.2875) < 1e-6,
      "manual should be ((y_hat - y) ** 2).mean() and library nn.MSELoss()(y_hat, y): both 0.2875")"""),
    # ---------------------------------------------------------------- 2
    ("md", """## Exercise 2 (guided): `optimizer.step()` is `param -= lr * param.grad`

Make two identical `nn.Linear(1, 1)` models. Take one step on `model_a` with `torch.optim.SGD(lr=0.1)`, and one
step on `model_b` by hand inside `torch.no_grad()`. Then the lesson's check: a parameter at 5.0 with gradient
2.0 after one SGD step with lr=0.1 — store the result in `after_one_step`."""),
    ("code", """x = torch.tensor([[1.0], [2.0], [3.0]])
y = torch.tensor([[3.0], [5.0], [7.0]])
lr = 0.1

torch.manual_seed(1)
model_a = nn.Linear(1, 1)
model_b = nn.Linear(1, 1)
model_b.load_state_dict(model_a.state_dict())  # the same starting weights

optimizer = torch.optim.SGD(model_a.parameters(), lr=lr)
optimizer.zero_grad()
nn.MSELoss()(model_a(x), y).backward()
optimizer.step()

model_b.zero_grad()
nn.MSELoss()(model_b(x), y).backward()
with torch.no_grad():
    for param in model_b.parameters():
        param -= lr * param.grad

p = torch.tensor(5.0, requires_grad=True)
(2.0 * p).backward()  # p.grad is now 2.0
torch.optim.SGD([p], lr=0.1).step()
after_one_step = p.item()
print(model_a.weight.item(), model_b.weight.item(), after_one_step)"""),
    ("code", """same = all(torch.allclose(a, b, atol=1e-7) for a, b in zip(model_a.parameters(), model_b.parameters()))
check("exercise 2", same and abs(after_one_step - 4.8) < 1e-6,
      "the hand update must be param -= lr * param.grad under torch.no_grad(); 5.0 - 0.1 * 2.0 = 4.8")"""),
    # ---------------------------------------------------------------- 3
    ("md", """## Exercise 3 (supported): train linear regression on y = 3x − 2

Generate 100 points of y = 3x − 2 plus a little noise, then write the complete loop with `nn.Linear(1, 1)`,
`nn.MSELoss()` and `torch.optim.SGD(lr=0.1)` for 200 epochs. Keep every epoch's loss in `losses`. Write it as a
function `train(model, optimizer, x, y, epochs)` — the next exercises reuse it."""),
    ("code", """torch.manual_seed(0)
x = torch.rand(100, 1) * 4 - 2
y = 3 * x - 2 + 0.1 * torch.randn(100, 1)


def train(model, optimizer, x, y, epochs):
    criterion = nn.MSELoss()
    losses = []
    for epoch in range(epochs):
        y_hat = model(x)              # 1. forward
        loss = criterion(y_hat, y)    # 2. loss
        optimizer.zero_grad()         # 3. clear old gradients
        loss.backward()               # 4. backward
        optimizer.step()              # 5. update
        losses.append(loss.item())
    return losses


torch.manual_seed(0)
model = nn.Linear(1, 1)
losses = train(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, epochs=200)
print(f"w={model.weight.item():.3f}  b={model.bias.item():.3f}  loss {losses[0]:.3f} -> {losses[-1]:.4f}")"""),
    ("code", """w, b = model.weight.item(), model.bias.item()
check("exercise 3", abs(w - 3) < 0.05 and abs(b + 2) < 0.05 and losses[-1] < 0.02,
      f"expected w close to 3 and b close to -2, got w={w:.3f}, b={b:.3f}; is zero_grad before backward?")"""),
    # ---------------------------------------------------------------- 4
    ("md", """## Exercise 4 (supported): swap SGD for Adam — one line

Train a fresh `nn.Linear(1, 1)` (same seed) with `torch.optim.Adam(model.parameters(), lr=0.1)` using the same
`train` function. Compare how many epochs each optimizer needs to get the loss under 0.05; store them in
`sgd_epochs` and `adam_epochs`."""),
    ("code", """torch.manual_seed(0)
adam_model = nn.Linear(1, 1)
adam_losses = train(adam_model, torch.optim.Adam(adam_model.parameters(), lr=0.1), x, y, epochs=200)


def epochs_to(losses, target=0.05):
    return next(epoch + 1 for epoch, loss in enumerate(losses) if loss < target)


sgd_epochs, adam_epochs = epochs_to(losses), epochs_to(adam_losses)
print(f"epochs to loss < 0.05: SGD {sgd_epochs}, Adam {adam_epochs}; Adam final loss {adam_losses[-1]:.4f}")"""),
    ("code", """check("exercise 4", adam_losses[-1] < 0.02 and sgd_epochs > 0 and adam_epochs > 0
      and abs(adam_model.weight.item() - 3) < 0.05,
      "only the optimizer line changes: torch.optim.Adam(adam_model.parameters(), lr=0.1)")"""),
    # ---------------------------------------------------------------- 5
    ("md", """## Exercise 5 (supported): diagnose the accumulation bug

A colleague's loop "is not learning". **Predict** first: what happens to `.grad` from one epoch to the next?
Run `broken` and look at the loss. Then write `fixed`, the corrected loop. Finally show the arithmetic: with a
first gradient of 2.0 and a second of 3.0 and no `zero_grad`, store what `.grad` holds in `accumulated`."""),
    ("code", """def broken(model, optimizer, x, y, epochs):
    criterion = nn.MSELoss()
    losses = []
    for epoch in range(epochs):
        loss = criterion(model(x), y)
        loss.backward()               # .grad += new gradient: nothing cleared it
        optimizer.step()
        losses.append(loss.item())
    return losses


def fixed(model, optimizer, x, y, epochs):
    criterion = nn.MSELoss()
    losses = []
    for epoch in range(epochs):
        loss = criterion(model(x), y)
        optimizer.zero_grad()         # the fix: clear, compute, use
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


torch.manual_seed(0)
m = nn.Linear(1, 1)
broken_losses = broken(m, torch.optim.SGD(m.parameters(), lr=0.05), x, y, epochs=60)
torch.manual_seed(0)
m = nn.Linear(1, 1)
fixed_losses = fixed(m, torch.optim.SGD(m.parameters(), lr=0.05), x, y, epochs=60)
print("broken:", [round(v, 2) for v in broken_losses[::6]])
print("fixed: ", [round(v, 2) for v in fixed_losses[::6]])

p = torch.tensor(1.0, requires_grad=True)
(2.0 * p).backward()
(3.0 * p).backward()
accumulated = p.grad.item()
print("accumulated gradient:", accumulated)"""),
    ("code", """falls_steadily = all(b <= a for a, b in zip(fixed_losses, fixed_losses[1:]))
check("exercise 5", falls_steadily and fixed_losses[-1] < broken_losses[-1] and accumulated == 5.0,
      "fixed must call optimizer.zero_grad() before loss.backward(); 2.0 + 3.0 = 5.0")"""),
    # ---------------------------------------------------------------- 6
    ("md", """## Exercise 6 (stretch, independent): a 2-layer ReLU network on y = x²

A straight line cannot fit a parabola. Build `net = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 1))`,
train it on y = x² for x in [−2, 2] with Adam, and store its final loss in `net_loss` and the best straight
line's loss in `line_loss`."""),
    ("code", """x2 = torch.linspace(-2, 2, 100).unsqueeze(1)
y2 = x2 ** 2

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 1))
net_loss = train(net, torch.optim.Adam(net.parameters(), lr=0.01), x2, y2, epochs=500)[-1]

torch.manual_seed(0)
line = nn.Linear(1, 1)
line_loss = train(line, torch.optim.Adam(line.parameters(), lr=0.05), x2, y2, epochs=500)[-1]
print(f"ReLU net loss {net_loss:.4f}   straight line loss {line_loss:.4f}")"""),
    ("code", """check("exercise 6", net_loss < 0.02 and line_loss > 10 * net_loss,
      "use nn.ReLU between the two Linear layers (without it they collapse into one line), Adam lr=0.01, 500 epochs")"""),
    ("md", """## What you just did

Every exercise was the same four beats. `nn.MSELoss` is the formula, `optimizer.step()` is the update rule,
`optimizer.zero_grad()` is the clear — forget it and the gradients add up. In the terminal,
`glassloop lesson three-ways` shows the same loop as scalar autograd, NumPy and PyTorch with identical numbers."""),
]


def build() -> nbformat.NotebookNode:
    notebook = new_notebook()
    notebook.cells = [new_markdown_cell(text) if kind == "md" else new_code_cell(text) for kind, text in CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:02d}"  # stable ids: rebuilding gives the same file
    return notebook


def main() -> None:
    nbformat.write(build(), TARGET)
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
