"""Many configurations of one model trained at once: stacked weights, one batched step for all of them."""

from glassloop.sweeps.trainer import SweepResult, sweep

__all__ = ["SweepResult", "sweep"]
