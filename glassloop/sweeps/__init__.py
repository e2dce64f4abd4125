"""Many configurations of one model trained at once: stacked weights, one batched step for all of them.

`glassloop.sweeps.sweep` is the function (`gl.sweep`); the modules: api (sweep() and its checks), stacks (the
stacked models and loss), optim (the stacked optimizer), schedules, trainer (the heartbeat), resume, result,
tracking (MLflow).
"""

from glassloop.sweeps.api import sweep
from glassloop.sweeps.result import SweepResult
from glassloop.sweeps.trainer import SweepState

__all__ = ["SweepResult", "SweepState", "sweep"]
