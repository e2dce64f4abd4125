"""glassloop: PyTorch training loops you can see through.

`import glassloop` needs only torch and numpy; MLflow, matplotlib, pandas and scikit-learn are imported where used.
"""

from __future__ import annotations

import importlib
from typing import Any

from glassloop.callbacks import Checkpoint, Console, EarlyStopping
from glassloop.checkpoint import load_checkpoint
from glassloop.errors import CallbackError, CheckpointError, ConfigError, DataError, GlassloopError
from glassloop.events import show_loop
from glassloop.loop import evaluate, fit, predict
from glassloop.state import History, LoopState
from glassloop.sweep import sweep

__version__ = "0.1.0"

# Imported on first use so that `import glassloop` stays light (no MLflow, matplotlib, pandas, sklearn).
_LAZY = {
    "MLflowLogger": ("glassloop.callbacks.mlflow", "MLflowLogger"),
    "diagnose": ("glassloop.diagnosis", "diagnose"),
    "plots": ("glassloop.plots", None),
    "doctor": ("glassloop.doctor", None),
    "check": ("glassloop.doctor.runtime", "check"),
    "teach": ("glassloop.teach", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'glassloop' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


__all__ = [
    "CallbackError", "CheckpointError", "Checkpoint", "ConfigError", "Console", "DataError", "EarlyStopping",
    "GlassloopError", "History", "LoopState", "__version__", "evaluate", "fit", "load_checkpoint", "predict",
    "show_loop", "sweep", *_LAZY,
]
