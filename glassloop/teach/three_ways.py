"""One training run, three instruments: the `linreg` loop as scalar autograd, NumPy, and PyTorch.

Same data (y = 2x + 1 plus a little fixed noise), same initial w and b, same learning rate, full-batch gradient
descent on the mean squared error. The three trajectories agree to float precision: "same heartbeat, new
instruments". Each function returns a `Trajectory`: the loss *before* each step and (w, b) *after* it, with the
initial (w, b) first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from glassloop.teach.value import Value

# The linreg workload, small enough to read: 8 points of y = 2x + 1 with fixed (not random) noise.
X = [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
NOISE = [0.05, -0.1, 0.08, -0.02, 0.1, -0.07, 0.03, -0.05]
Y = [2.0 * x + 1.0 + e for x, e in zip(X, NOISE, strict=True)]
W0, B0 = -0.5, 0.3  # where every representation starts
LR = 0.1
EPOCHS = 60


@dataclass
class Trajectory:
    """What one representation did: `losses[k]` at step k (before the update), `ws`/`bs` with the start first."""

    name: str
    losses: list[float] = field(default_factory=list)
    ws: list[float] = field(default_factory=list)
    bs: list[float] = field(default_factory=list)

    @property
    def final(self) -> tuple[float, float, float]:
        """(w, b, last loss)."""
        return self.ws[-1], self.bs[-1], self.losses[-1]


def train_value(epochs: int = EPOCHS, lr: float = LR) -> Trajectory:
    """Scalar autograd: every multiply and add is a `Value` node; backward() applies the chain rule."""
    w, b = Value(W0, label="w"), Value(B0, label="b")
    trace = Trajectory("Value", ws=[w.data], bs=[b.data])
    for _ in range(epochs):
        # forward: the mean of squared errors, one scalar node at a time
        loss = sum(((w * x + b) - y).square() for x, y in zip(X, Y, strict=True)) / len(X)
        w.zero_grad()
        b.zero_grad()  # clear, compute, use
        loss.backward()
        w.data -= lr * w.grad
        b.data -= lr * b.grad
        trace.losses.append(loss.data)
        trace.ws.append(w.data)
        trace.bs.append(b.data)
    return trace


def train_numpy(epochs: int = EPOCHS, lr: float = LR) -> Trajectory:
    """NumPy with the gradients worked out by hand: dL/dw = mean(2 (ŷ - y) x), dL/db = mean(2 (ŷ - y))."""
    x, y = np.array(X, dtype=np.float64), np.array(Y, dtype=np.float64)
    w, b = W0, B0
    trace = Trajectory("NumPy", ws=[w], bs=[b])
    for _ in range(epochs):
        y_hat = w * x + b  # forward
        error = y_hat - y
        loss = float(np.mean(error**2))  # loss
        grad_w = float(np.mean(2 * error * x))  # backward, by hand
        grad_b = float(np.mean(2 * error))
        w -= lr * grad_w  # update (nothing accumulates: the gradients are fresh variables)
        b -= lr * grad_b
        trace.losses.append(loss)
        trace.ws.append(w)
        trace.bs.append(b)
    return trace


def _torch_data():
    import torch

    return torch.tensor(X, dtype=torch.float64).unsqueeze(1), torch.tensor(Y, dtype=torch.float64).unsqueeze(1)


def _torch_model():
    import torch
    from torch import nn

    model = nn.Linear(1, 1).double()  # float64 so the comparison is tight
    with torch.no_grad():
        model.weight.fill_(W0)
        model.bias.fill_(B0)
    return model


def train_torch(epochs: int = EPOCHS, lr: float = LR) -> Trajectory:
    """The plain PyTorch loop of lesson 000: nn.Linear, nn.MSELoss, torch.optim.SGD."""
    import torch
    from torch import nn

    x, y = _torch_data()
    model = _torch_model()
    criterion = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    trace = Trajectory("PyTorch", ws=[model.weight.item()], bs=[model.bias.item()])
    for _ in range(epochs):
        y_hat = model(x)  # forward
        loss = criterion(y_hat, y)  # loss
        optimizer.zero_grad()  # clear
        loss.backward()  # backward
        optimizer.step()  # update
        trace.losses.append(loss.item())
        trace.ws.append(model.weight.item())
        trace.bs.append(model.bias.item())
    return trace


def train_fit(epochs: int = EPOCHS, lr: float = LR) -> Trajectory | None:
    """The same run through `glassloop.fit` (full batch, no shuffle), or None while `fit` is not available."""
    import torch

    import glassloop

    fit = getattr(glassloop, "fit", None)
    if fit is None:
        return None
    x, y = _torch_data()
    model = _torch_model()
    weights: list[tuple[float, float]] = [(model.weight.item(), model.bias.item())]

    class RecordWeights:  # a tiny callback: read (w, b) after every epoch
        def on_epoch_end(self, state) -> None:
            weights.append((model.weight.item(), model.bias.item()))

    history = fit(
        model, (x, y), loss="mse", optimizer=torch.optim.SGD(model.parameters(), lr=lr), epochs=epochs,
        batch_size=None, shuffle=False, callbacks=[RecordWeights()], verbose=False, progress=False,
    )
    return Trajectory(
        "gl.fit", losses=[float(r["train_loss"]) for r in history.records],
        ws=[w for w, _ in weights], bs=[b for _, b in weights],
    )


def three_ways(epochs: int = EPOCHS, lr: float = LR, with_fit: bool = True) -> list[Trajectory]:
    """Run every representation (gl.fit too when it exists and `with_fit`)."""
    traces = [train_value(epochs, lr), train_numpy(epochs, lr), train_torch(epochs, lr)]
    if with_fit:
        fitted = train_fit(epochs, lr)
        if fitted is not None:
            traces.append(fitted)
    return traces


def max_difference(traces: list[Trajectory]) -> float:
    """The largest absolute disagreement between any representation and the first, over loss, w and b."""
    reference = traces[0]
    worst = 0.0
    for trace in traces[1:]:
        for a, b in ((reference.losses, trace.losses), (reference.ws, trace.ws), (reference.bs, trace.bs)):
            worst = max(worst, max(abs(p - q) for p, q in zip(a, b, strict=True)))
    return worst


def side_by_side(traces: list[Trajectory], every: int = 10) -> str:
    """A table with one column group per representation: step, then loss / w / b for each."""
    header = f"{'step':>4} " + " ".join(f"| {t.name + ' loss':>14} {'w':>8} {'b':>8} " for t in traces)
    lines = [header, "-" * len(header)]
    steps = len(traces[0].losses)
    for k in [*range(0, steps, every), steps - 1] if (steps - 1) % every else range(0, steps, every):
        cells = " ".join(f"| {t.losses[k]:>14.8f} {t.ws[k + 1]:>8.5f} {t.bs[k + 1]:>8.5f} " for t in traces)
        lines.append(f"{k + 1:>4} {cells}")
    return "\n".join(lines)
