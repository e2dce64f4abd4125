"""`gl.find_lr`: the learning-rate range test (Smith 2015, "Cyclical Learning Rates for Training Neural Networks"),
as fastai's `lr_find` and Lightning's `Tuner.lr_find` run it.

One short run in which the LR grows geometrically from `start` to `end`, one step per batch, with the lessons'
step order (zero_grad -> forward -> loss -> backward -> step). The loss is smoothed exponentially (beta 0.98 with
bias correction, as fastai does) and the run stops once the smoothed loss exceeds 4x its best (it diverged) or
a loss is NaN/Inf. The suggestion follows a named rule:

- `"min/10"` (default): a tenth of the LR with the lowest smoothed loss (fastai's `lr_min`): a step back from
  where the loss stops improving. On `ssa` (Adam, batch 64) it suggests ~5e-3, which beats lr=1e-3 over the
  same epochs.
- `"steepest"`: the LR where the smoothed loss falls fastest against log10(LR), skipping the first
  10 and the last point (Lightning's `suggestion()`): the loss is still dropping quickly there, far from the
  edge of divergence. On a curve that stays flat for most of the range (small models, few steps) the steepest
  point is read from noise, so it is not the default.

Afterwards the model's parameters, buffers, gradients and train/eval mode, an optimizer instance's state and LR,
and the Python, NumPy and torch (CPU and CUDA) RNG states are put back exactly as they were.
"""

from __future__ import annotations

import copy
import io
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassloop.core.batches import make_source
from glassloop.core.building import make_loss, make_optimizer
from glassloop.core.gradients import clear_gradients
from glassloop.core.rules import choose_threads
from glassloop.core.structured import call_model
from glassloop.errors import ConfigError

RULES = ("min/10", "steepest")
RULE_TEXT = {
    "steepest": "steepest descent of the smoothed loss against log10(lr) (Lightning's rule)",
    "min/10": "a tenth of the lr with the lowest smoothed loss (fastai's lr_min)",
}
SKIP_BEGIN, SKIP_END = 10, 1  # points the steepest-descent rule ignores: the noisy start, the divergence at the end
MAX_STEPS = 100_000


@dataclass
class LRFindResult:
    """The range test's curve (`lrs`, raw `losses`, bias-corrected `smoothed`), the suggested LR and its rule."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float | None
    rule: str
    stop_reason: str
    best_lr: float | None = None  # the lr with the lowest smoothed loss
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rule_text(self) -> str:
        return RULE_TEXT[self.rule]

    def to_dict(self) -> dict[str, Any]:
        return {"suggestion": self.suggestion, "rule": self.rule, "rule_text": self.rule_text,
                "stop_reason": self.stop_reason, "best_lr": self.best_lr, "lrs": self.lrs,
                "losses": [v if math.isfinite(v) else None for v in self.losses], "smoothed": self.smoothed}

    def __str__(self) -> str:
        if self.suggestion is None:
            head = "lr range test: no suggestion (too few points to read the curve; raise steps or end)"
        else:
            head = f"lr range test: suggested lr {self.suggestion:.3g} ({self.rule}: {self.rule_text})"
        low = f"; lowest smoothed loss at lr {self.best_lr:.3g}" if self.best_lr is not None else ""
        return f"{head}\n  {len(self.lrs)} steps from lr {self.lrs[0]:.3g} to {self.lrs[-1]:.3g}{low}; {self.stop_reason}"

    def plot(self, path: str | Path | None = None) -> Any:
        """Loss against LR (log axis): raw points, the smoothed curve, the suggestion. Writes a PNG at `path`."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(7, 4))
        FigureCanvasAgg(figure)
        ax = figure.subplots()
        finite = [(lr, v) for lr, v in zip(self.lrs, self.losses) if math.isfinite(v)]
        if finite:
            ax.plot(*zip(*finite), color="tab:blue", alpha=0.3, linewidth=1, label="loss")
        ax.plot(self.lrs[: len(self.smoothed)], self.smoothed, color="tab:blue", label="smoothed loss")
        if self.suggestion is not None:
            ax.axvline(self.suggestion, color="tab:green", linestyle="--", linewidth=1,
                       label=f"suggested lr {self.suggestion:.3g} ({self.rule})")
        if self.smoothed:  # frame the smoothed curve: one exploded raw loss must not flatten the picture
            low, high = min(self.smoothed), max(self.smoothed)
            margin = 0.1 * (high - low) or 0.1 * abs(high) or 1.0
            ax.set_ylim(low - margin, high + margin)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
        ax.set_title("learning-rate range test", fontsize="medium")
        figure.subplots_adjust(left=0.12, right=0.97, top=0.9, bottom=0.14)
        if path is not None:
            from glassloop.core.checkpoint import write_file

            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100)
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_file(buffer.getvalue(), target)  # atomic: never a half-written PNG
        return figure


def find_lr(model: torch.nn.Module, train: Any, loss: Any = "mse", optimizer: Any = "adam", start: float = 1e-7,
            end: float = 10.0, steps: int = 100, batch_size: int | None = 32, *, momentum: float = 0.0,
            weight_decay: float = 0.0, beta: float = 0.98, diverge: float = 4.0, rule: str = "min/10",
            seed: int | None = 0, compute_loss: Any = None, threads: Any = "auto") -> LRFindResult:
    """Run the LR range test on `model` and `train` and return the curve and a suggested LR.

    `train`, `loss`, `optimizer`, `batch_size`, `momentum`, `weight_decay` and `compute_loss` mean what they mean
    in `gl.fit`; `threads` follows gl.fit's thread policy (glassloop/core/rules.py). The model runs on the device
    its parameters are on. Bad bounds raise `ConfigError` before anything runs.
    """
    check_range(start, end, steps, beta, diverge, rule)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ConfigError("the model has no trainable parameters; find_lr needs something to train")
    device = parameters[0].device
    rows = batch_size if batch_size is not None else len(train[0]) if isinstance(train, (tuple, list)) else 1
    chosen = choose_threads(threads, device, rows, sum(p.numel() for p in parameters))
    saved = _Saved.take(model, optimizer if isinstance(optimizer, torch.optim.Optimizer) else None)
    previous_threads = torch.get_num_threads()
    try:
        if chosen is not None:
            torch.set_num_threads(chosen)
        loss_fn = make_loss(loss) if compute_loss is None else None
        built = make_optimizer(optimizer, parameters, start, momentum, weight_decay)
        source = make_source(train, batch_size, True, seed).to(device)
        curve = _sweep(model, built, source, loss_fn, compute_loss, _schedule(start, end, steps), beta, diverge)
    finally:
        saved.restore(model)
        torch.set_num_threads(previous_threads)
    lrs, losses, smoothed, stop_reason = curve
    suggestion, best_lr = suggest(lrs, smoothed, rule)
    return LRFindResult(lrs, losses, smoothed, suggestion, rule, stop_reason, best_lr)


def check_range(start: Any, end: Any, steps: Any, beta: Any = 0.98, diverge: Any = 4.0, rule: Any = "min/10") -> None:
    """One-line `ConfigError`s for bounds a range test cannot use, before anything runs."""
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"find_lr {name}={value!r}: expected a positive learning rate, e.g. start=1e-7, end=10")
    if end <= start:
        raise ConfigError(f"find_lr bounds in the wrong order: start={start!r} >= end={end!r}; the LR grows from "
                          f"start to end, e.g. start=1e-7, end=10")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= MAX_STEPS:
        raise ConfigError(f"find_lr steps={steps!r}: expected a whole number from 2 to {MAX_STEPS} (default 100)")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
        raise ConfigError(f"find_lr beta={beta!r}: expected a smoothing factor in [0, 1), e.g. 0.98")
    if isinstance(diverge, bool) or not isinstance(diverge, (int, float)) or not diverge > 1:
        raise ConfigError(f"find_lr diverge={diverge!r}: expected a factor > 1 over the best smoothed loss, e.g. 4")
    if rule not in RULES:
        raise ConfigError(f"find_lr rule={rule!r}: expected one of {', '.join(RULES)}")


def _schedule(start: float, end: float, steps: int) -> list[float]:
    """start * (end/start)^(i/(steps-1)): the LR grows by the same factor every step, from start to end exactly."""
    return [float(v) for v in np.geomspace(start, end, steps)]


def _sweep(model: torch.nn.Module, optimizer: torch.optim.Optimizer, source: Any, loss_fn: Any, compute_loss: Any,
           lrs: list[float], beta: float, diverge: float) -> tuple[list[float], list[float], list[float], str]:
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    batches = _forever(source)
    tried, losses, smoothed = [], [], []
    average, best = 0.0, math.inf
    for step, lr in enumerate(lrs):
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next(batches)
        clear_gradients(parameters)                                  # 1. zero_grad
        if compute_loss is None:
            inputs, targets = batch
            value = loss_fn(call_model(model, inputs), targets)      # 2-3. forward + loss
        else:
            value = compute_loss(model, batch)
        value.backward()                                             # 4. backward
        current = value.item()
        tried.append(lr)
        losses.append(current)
        if not math.isfinite(current):
            return tried, losses, smoothed, f"stopped at lr {lr:.3g}: the loss became {current} (no update applied)"
        optimizer.step()                                             # 5. step
        average = beta * average + (1 - beta) * current
        smoothed.append(average / (1 - beta ** (step + 1)))          # bias correction: the average starts at 0
        best = min(best, smoothed[-1])
        if step > 0 and smoothed[-1] > diverge * best:
            return tried, losses, smoothed, (f"stopped at lr {lr:.3g}: the smoothed loss {smoothed[-1]:.4g} "
                                             f"exceeded {diverge:g}x its best {best:.4g} (diverged)")
    return tried, losses, smoothed, f"reached the end of the range (lr {lrs[-1]:.3g}) without diverging"


def _forever(source: Any) -> Any:
    """Batches across as many epochs as the steps need."""
    while True:
        empty = True
        for batch in source.epoch():  # already on the model's device (source.to above)
            empty = False
            yield batch
        if empty:
            raise ConfigError("the training data yielded no batches; find_lr needs at least one")


def suggest(lrs: list[float], smoothed: list[float], rule: str = "min/10") -> tuple[float | None, float | None]:
    """(suggested lr, lr of the lowest smoothed loss) from a finished curve; None where it cannot be read."""
    count = len(smoothed)
    if count == 0:
        return None, None
    values = np.asarray(smoothed, dtype=float)
    lowest = int(np.argmin(values))
    best_lr = lrs[lowest]
    if rule == "min/10":
        return best_lr / 10, best_lr
    begin, stop = (SKIP_BEGIN, count - SKIP_END) if count - SKIP_END - SKIP_BEGIN >= 3 else (0, count)
    if stop - begin < 2:
        return None, best_lr
    logs = np.log10(np.asarray(lrs[:count], dtype=float))
    slopes = np.gradient(values[begin:stop], logs[begin:stop])
    return lrs[begin + int(np.argmin(slopes))], best_lr


@dataclass
class _Saved:
    """Everything the range test changes, copied before it starts (see the module docstring)."""

    model_state: dict[str, torch.Tensor]
    grads: list[torch.Tensor | None]
    training: dict[str, bool]
    optimizer: torch.optim.Optimizer | None
    optimizer_state: dict[str, Any] | None
    rng: dict[str, Any]

    @classmethod
    def take(cls, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> _Saved:
        rng: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                               "torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return cls(
            model_state={k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
            grads=[None if p.grad is None else p.grad.detach().clone() for p in model.parameters()],
            training={name: module.training for name, module in model.named_modules()},
            optimizer=optimizer,
            optimizer_state=copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None,
            rng=rng,
        )

    def restore(self, model: torch.nn.Module) -> None:
        with torch.no_grad():
            current = model.state_dict(keep_vars=True)
            for key, value in self.model_state.items():
                current[key].copy_(value)  # in place: the parameters keep their identity (optimizers hold them)
        for parameter, grad in zip(model.parameters(), self.grads):
            parameter.grad = grad
        for name, module in model.named_modules():
            module.training = self.training.get(name, module.training)
        if self.optimizer is not None and self.optimizer_state is not None:
            self.optimizer.load_state_dict(self.optimizer_state)
        random.setstate(self.rng["python"])
        np.random.set_state(self.rng["numpy"])
        torch.set_rng_state(self.rng["torch"])
        if "cuda" in self.rng:
            torch.cuda.set_rng_state_all(self.rng["cuda"])
