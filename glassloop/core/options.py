"""The options of `fit`, checked before anything is built."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from glassloop.errors import ConfigError

# Bounds shared by gl.fit, gl.sweep and the command line (one place, so they always agree).
MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64-bit seeds
MAX_BATCH_SIZE = 2**31  # as glassloop fit; torch's split cannot take a size past 64 bits
MAX_EPOCHS = 1_000_000  # `glassloop sweep` flags, as glassloop fit
MAX_CONFIGURATIONS = 10_000  # `glassloop sweep`: K models stacked in one tensor
MAX_PARAMETERS = 200_000_000  # `glassloop sweep`: K x parameters of one model, as glassloop fit's limit


PRECISIONS = {"32": "32", "32-true": "32", "bf16": "bf16", "bf16-mixed": "bf16", "16-mixed": "16-mixed"}
SCHEDULER_STEPS = ("auto", "epoch", "batch")
PROGRESS = ("auto", True, False, None)


@dataclass(frozen=True)
class FitOptions:
    """Every option of `fit` except the model and the data: typed, frozen, validated once when built.

    The names are `fit`'s keyword arguments; `Run` builds the pieces from them and nothing changes them later.
    """

    loss: Any = "mse"
    optimizer: Any = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    epochs: int = 10
    batch_size: int | None = 32
    shuffle: bool = True
    scheduler: Any = None
    clip_grad_norm: float | None = None
    callbacks: Any = ()
    seed: int | None = None
    device: Any = "auto"
    metrics: Any = None
    progress: Any = "auto"
    verbose: bool = True
    compute_loss: Any = None
    scheduler_step: str = "auto"
    threads: Any = "auto"
    checks: bool = False
    accumulate: int = 1
    precision: str = "32"
    fused_step: bool = True
    check_finite_every: int = 1

    def __post_init__(self) -> None:
        _check_number("epochs", self.epochs, 1, integer=True)
        if isinstance(self.epochs, int) and self.epochs > MAX_EPOCHS:
            raise ConfigError(f"epochs={self.epochs} is more than {MAX_EPOCHS}; expected a number of epochs up to that")
        _check_number("clip_grad_norm", self.clip_grad_norm, 0, allow_none=True)
        if self.clip_grad_norm == 0:
            raise ConfigError("clip_grad_norm=0 would zero every gradient; use a positive max norm such as 1.0, "
                              "or None for no clipping")
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
            raise ConfigError(f"seed={seed!r} must be an integer from 0 to 2**63 - 1, or None")
        if self.scheduler_step not in SCHEDULER_STEPS:
            raise ConfigError(f"scheduler_step={self.scheduler_step!r}; expected 'auto', 'epoch' or 'batch'")
        if not isinstance(self.shuffle, bool):
            raise ConfigError(f"shuffle={self.shuffle!r} must be True or False")
        if self.progress not in PROGRESS:
            raise ConfigError(f"progress={self.progress!r}; expected 'auto', True or False")
        if isinstance(self.accumulate, bool) or not isinstance(self.accumulate, int) or self.accumulate < 1:
            raise ConfigError(f"accumulate={self.accumulate!r} must be an integer >= 1 (micro-batches per optimizer "
                              "step; 1 = no accumulation)")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision={self.precision!r}; expected one of {', '.join(map(repr, PRECISIONS))}")
        if not isinstance(self.fused_step, bool):
            raise ConfigError(f"fused_step={self.fused_step!r} must be True or False")
        every = self.check_finite_every
        if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= MAX_EPOCHS:
            raise ConfigError(f"check_finite_every={every!r} must be an integer >= 1 (1 = read the loss and norm "
                              "every step; N = keep them on the device and read every Nth step)")
        if self.compute_loss is not None and not callable(self.compute_loss):
            raise ConfigError("compute_loss must be a function fn(model, batch) -> scalar loss tensor")
        object.__setattr__(self, "precision", PRECISIONS[self.precision])  # one spelling from here on


def _check_number(name: str, value: Any, minimum: float, allow_none: bool = False, integer: bool = False) -> None:
    if value is None and allow_none:
        return
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or value < minimum:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name}={value!r} must be {kind} >= {minimum}")
