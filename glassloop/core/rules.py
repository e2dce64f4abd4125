"""The rules `gl.fit` and `gl.sweep` share, written once: the thread policy, the patience rule of early
stopping, and the non-finite guard's message. Changing one here changes both engines."""

from __future__ import annotations

import math
import os
from typing import Any

import torch

from glassloop.errors import ConfigError

# Below this many multiply-accumulates per step, a second intra-op thread costs more in wake-ups than it
# saves in GEMM time (measured in bench/speed.py: ssa's 64x4673 step is per-op bound, wide's 256x74k is not).
SMALL_STEP_MACS = 4_000_000


def choose_threads(threads: Any, device: torch.device, rows_per_step: int, parameters: int) -> int | None:
    """Intra-op threads for a run, decided once from the model and the machine, never from the momentary load
    (a load-dependent choice made the same seed give different bits on a busy machine, and could differ
    between DDP ranks). None keeps torch's current setting."""
    if threads == "auto":
        if device.type != "cpu":
            return None
        return 1 if rows_per_step * parameters < SMALL_STEP_MACS else (os.cpu_count() or 1)
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads={threads!r} must be 'auto', None or an integer >= 1")
    return threads


def improved(value: float, best: float | None, mode: str = "min", min_delta: float = 0.0) -> bool:
    """The patience rule: a finite value beats the best so far by more than `min_delta`."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def patience_reason(monitor: str, patience: int, best: float, best_epoch: int) -> str:
    """`best_epoch` is 0-based (as in History); on screen it is 1-based."""
    return (f"early stopping: {monitor} has not improved for {patience} epochs since its best {best:.6g} "
            f"at epoch {best_epoch + 1}")


def nonfinite_reason(loss_value: float, norm_value: float, epoch: int, batch_index: int, step: int) -> str:
    """Why the non-finite guard stopped a run before its update (`epoch`, `batch_index`, `step` 0-based)."""
    what, value = ("loss", loss_value) if not math.isfinite(loss_value) else ("gradient norm", norm_value)
    return (f"non-finite {what} ({value}) at epoch {epoch + 1}, batch {batch_index + 1}, step {step + 1}; "
            "no update was applied. Lower the learning rate ~10x, add clip_grad_norm=1.0, and check the data "
            "for NaN/Inf or unscaled features")
