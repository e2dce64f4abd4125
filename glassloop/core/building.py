"""Names -> torch's own optimizers, losses and LR schedulers, and when each scheduler steps.

Per-batch schedulers (`onecycle`, `warmup_cosine`, and any torch `OneCycleLR`/`CyclicLR`) step after every
optimizer step; `plateau` steps once per epoch fed the validation loss; the rest step once per epoch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from glassloop.errors import ConfigError

LOSSES = {
    "mse": nn.MSELoss,
    "mae": nn.L1Loss,
    "l1": nn.L1Loss,
    "huber": nn.HuberLoss,
    "smooth_l1": nn.SmoothL1Loss,
    "cross_entropy": nn.CrossEntropyLoss,
    "bce_with_logits": nn.BCEWithLogitsLoss,
    "bce": nn.BCELoss,
}
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("step", "exponential", "cosine", "warmup_cosine", "plateau", "onecycle")
PER_BATCH = (torch.optim.lr_scheduler.OneCycleLR, torch.optim.lr_scheduler.CyclicLR)


def make_loss(loss: Any) -> Any:
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ConfigError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)} or an nn.Module/callable")
        return LOSSES[loss]()
    if not callable(loss):
        raise ConfigError(f"loss={loss!r} is neither a name nor callable; pass e.g. loss='mse' or nn.MSELoss()")
    return loss


def make_optimizer(optimizer: Any, parameters: list[nn.Parameter], lr: float, momentum: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """A torch optimizer instance is used as given; a name builds the fastest correct torch implementation."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)} "
                          "or a torch.optim.Optimizer instance")
    _positive("lr", lr)
    _non_negative("weight_decay", weight_decay)
    _non_negative("momentum", momentum)
    name = optimizer.lower()
    if momentum and name != "sgd":
        raise ConfigError(f"momentum={momentum} only applies to optimizer='sgd' ({name} has betas); "
                          "drop momentum or use optimizer='sgd'")
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    options: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
    if name == "sgd":
        options["momentum"] = momentum
    # fused kernels run the whole update in one op: the largest optimizer win on CPU and GPU alike.
    fused_ok = all(p.device.type in ("cpu", "cuda", "mps") and p.dtype.is_floating_point for p in parameters)
    if fused_ok:
        try:
            return cls(parameters, fused=True, **options)
        except (RuntimeError, ValueError):
            pass
    return cls(parameters, **options)


def make_scheduler(scheduler: Any, optimizer: torch.optim.Optimizer, epochs: int,
                   steps_per_epoch: int) -> Any:
    """Build a named scheduler (torch's own classes underneath) or accept a torch scheduler as given."""
    if scheduler is None or not isinstance(scheduler, str):
        if scheduler is not None and not hasattr(scheduler, "step"):
            raise ConfigError(f"scheduler={scheduler!r} has no step(); pass a torch LR scheduler or one of "
                              f"{', '.join(SCHEDULERS)}")
        return scheduler
    lr_s = torch.optim.lr_scheduler
    steps = max(1, steps_per_epoch) * epochs
    base = optimizer.param_groups[0]["lr"]
    if scheduler == "step":
        return lr_s.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if scheduler == "exponential":
        return lr_s.ExponentialLR(optimizer, gamma=0.01 ** (1 / max(1, epochs)))  # 100x smaller by the end
    if scheduler == "cosine":
        return lr_s.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=base * 1e-2)
    if scheduler == "plateau":
        return lr_s.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=max(1, epochs // 20))
    if scheduler == "onecycle":
        return lr_s.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=steps)
    if scheduler == "warmup_cosine":
        warmup = max(1, min(steps // 10, 1000))  # lesson 004: linear ramp from ~0, then cosine to ~0

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, steps - warmup))
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

        return lr_s.LambdaLR(optimizer, factor)
    raise ConfigError(f"unknown scheduler {scheduler!r}; expected one of {', '.join(SCHEDULERS)} "
                      "or a torch LR scheduler instance")


# Schedulers whose step unit cannot be told from their class: a LambdaLR may count epochs or steps. The rule
# (docs/loop.md#schedules): they step after every optimizer step, as lesson 004 writes its warmup ("call
# scheduler.step() after each optimizer step, not each epoch"), and fit says so once; scheduler_step='epoch'
# makes them count epochs instead.
AMBIGUOUS = (torch.optim.lr_scheduler.LambdaLR, torch.optim.lr_scheduler.MultiplicativeLR,
             torch.optim.lr_scheduler.LinearLR, torch.optim.lr_scheduler.SequentialLR,
             torch.optim.lr_scheduler.ChainedScheduler)


def steps_per_batch(scheduler: Any, name: Any) -> bool:
    """True when the scheduler advances after every optimizer step rather than every epoch."""
    return isinstance(scheduler, PER_BATCH + AMBIGUOUS) or name in ("onecycle", "warmup_cosine")


def ambiguous_schedule_note(scheduler: Any) -> str | None:
    """The one line fit prints when it applied the per-step rule to a scheduler it could not classify."""
    if not isinstance(scheduler, AMBIGUOUS):
        return None
    return (f"glassloop: note: {type(scheduler).__name__} is stepped after every optimizer step (as lesson 004's "
            "warmup); pass scheduler_step='epoch' if it counts epochs")


def is_plateau(scheduler: Any) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={value!r} must be a positive number; e.g. {name}=1e-3")


def _non_negative(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={value!r} must be a number >= 0")
