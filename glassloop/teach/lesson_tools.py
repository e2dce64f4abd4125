"""What every lesson shares: its headings and `>> watch:` lines, the diagnosis of a hand-written loop's records,
and lesson 000's plain loop."""

from __future__ import annotations

import math
from typing import Any

LessonResult = dict[str, Any]


def title(text: str) -> None:
    print(f"\n== {text} " + "=" * max(0, 70 - len(text)))


def watch(text: str) -> None:
    print(f"  >> watch: {text}")


def show_diagnosis(history: Any) -> str | None:
    """Print what `glassloop.analysis.diagnosis` says about a run; None (and a note) in a build without it."""
    try:
        from glassloop.analysis.diagnosis import diagnose
    except ModuleNotFoundError as error:
        if error.name != "glassloop.analysis.diagnosis":
            raise  # a real import bug inside the module must not be hidden
        print("  (glassloop.analysis.diagnosis is not part of this build: no automatic diagnosis)")
        return None
    result = diagnose(history)
    print("  diagnosis:")
    for line in str(result).splitlines():
        print(f"    {line}")
    return result.label


def records_history(losses: list[float], grad_norms: list[float], lr: float,
                    val_losses: list[float] | None = None) -> Any:
    """Records of a hand-written loop in the shape `gl.fit` returns (0-based epochs), for the diagnosis."""
    from glassloop.core.state import History

    history = History()
    for epoch, (loss, norm) in enumerate(zip(losses, grad_norms, strict=True)):
        history.append({
            "epoch": epoch, "train_loss": loss, "val_loss": None if val_losses is None else val_losses[epoch],
            "lr": lr, "grad_norm": norm, "seconds": 0.0,
        })
    return history


def grad_norm(parameters: Any) -> float:
    """The global L2 norm of all gradients (what `clip_grad_norm_` measures)."""
    return math.sqrt(sum(float(p.grad.pow(2).sum()) for p in parameters if p.grad is not None))


def linreg_tensors() -> tuple[Any, Any]:
    import torch

    from glassloop.teach.three_ways import X, Y

    return torch.tensor(X).unsqueeze(1), torch.tensor(Y).unsqueeze(1)


def train_plain(model: Any, x: Any, y: Any, optimizer: Any, epochs: int,
                zero_grad: bool = True) -> tuple[list[float], list[float]]:
    """Lesson 000's loop, line for line. Returns the loss and the gradient norm of every epoch."""
    from torch import nn

    criterion = nn.MSELoss()
    losses, norms = [], []
    for _ in range(epochs):
        y_hat = model(x)  # 1. forward
        loss = criterion(y_hat, y)  # 2. loss
        if zero_grad:
            optimizer.zero_grad()  # 3. clear
        loss.backward()  # 4. backward
        norms.append(grad_norm(model.parameters()))
        optimizer.step()  # 5. update
        losses.append(loss.item())
    return losses, norms
