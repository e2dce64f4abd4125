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


def steps_per_batch(scheduler: Any, name: Any) -> bool:
    """True when the scheduler advances after every optimizer step rather than every epoch."""
    return isinstance(scheduler, PER_BATCH) or name in ("onecycle", "warmup_cosine")


def is_plateau(scheduler: Any) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={value!r} must be a positive number; e.g. {name}=1e-3")


def _non_negative(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={value!r} must be a number >= 0")


def fast_step(optimizer: torch.optim.Optimizer, built_here: bool) -> Any:
    """`optimizer.step` — or, for a fused Adam/AdamW that glassloop built by name, the very same fused kernel called
    directly: identical numbers, without torch.optim's ~65 us of per-call Python (hooks, profiler ranges, state
    walking), a sixth of a small model's step. Anything unusual goes through `optimizer.step()` itself."""
    eligible = built_here and isinstance(optimizer, torch.optim.Adam) and all(
        group.get("fused") and not group.get("amsgrad") and not group.get("maximize")
        and not group.get("capturable") and not isinstance(group["lr"], torch.Tensor)
        for group in optimizer.param_groups)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not eligible or len({(p.device, p.dtype) for p in params}) != 1:
        return optimizer.step

    def step() -> None:
        if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:
            optimizer.step()
            return
        for group in optimizer.param_groups:
            with_grad = [p for p in group["params"] if p.grad is not None]
            states = [optimizer.state[p] for p in with_grad]
            if not all(states):  # first step: torch creates the moment buffers and step counters
                optimizer.step()
                return
            if not with_grad:
                continue
            steps = [state["step"] for state in states]
            torch._foreach_add_(steps, 1)
            kernel = torch._fused_adamw_ if group["decoupled_weight_decay"] else torch._fused_adam_
            beta1, beta2 = group["betas"]
            kernel(with_grad, [p.grad for p in with_grad], [state["exp_avg"] for state in states],
                   [state["exp_avg_sq"] for state in states], [], steps, amsgrad=False, lr=group["lr"],
                   beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                   maximize=False, grad_scale=None, found_inf=None)

    return step
