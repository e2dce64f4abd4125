"""glassloop: PyTorch training loops you can see through.

Every public name is imported on first use (PEP 562), so `import glassloop` costs almost nothing and the static
doctor (`glassloop doctor`) runs without importing torch. `gl.fit` and friends need only torch and numpy; MLflow,
matplotlib, pandas and scikit-learn are imported where they are used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_PUBLIC = {
    "fit": ("glassloop.loop", "fit"),
    "evaluate": ("glassloop.loop", "evaluate"),
    "predict": ("glassloop.loop", "predict"),
    "History": ("glassloop.core.state", "History"),
    "LoopState": ("glassloop.core.state", "LoopState"),
    "show_loop": ("glassloop.core.events", "show_loop"),
    "load_checkpoint": ("glassloop.core.checkpoint", "load_checkpoint"),
    "Checkpoint": ("glassloop.callbacks.checkpoint", "Checkpoint"),
    "Console": ("glassloop.callbacks.console", "Console"),
    "EarlyStopping": ("glassloop.callbacks.early_stopping", "EarlyStopping"),
    "MLflowLogger": ("glassloop.callbacks.mlflow", "MLflowLogger"),
    "sweep": ("glassloop.sweeps", "sweep"),
    "find_lr": ("glassloop.lr_find", "find_lr"),
    "LRFindResult": ("glassloop.lr_find", "LRFindResult"),
    "diagnose": ("glassloop.analysis.diagnosis", "diagnose"),
    "plots": ("glassloop.analysis.plots", None),
    "doctor": ("glassloop.doctor", None),
    "check": ("glassloop.doctor.runtime", "check"),
    "teach": ("glassloop.teach", None),
    "GlassloopError": ("glassloop.errors", "GlassloopError"),
    "ConfigError": ("glassloop.errors", "ConfigError"),
    "DataError": ("glassloop.errors", "DataError"),
    "CheckpointError": ("glassloop.errors", "CheckpointError"),
    "CallbackError": ("glassloop.errors", "CallbackError"),
    "InputError": ("glassloop.core.structured", "InputError"),
    "TargetError": ("glassloop.core.guards", "TargetError"),
    "ModelOutputError": ("glassloop.core.guards", "ModelOutputError"),
    "LossError": ("glassloop.core.guards", "LossError"),
    "DeviceError": ("glassloop.core.devices", "DeviceError"),
    "TensorBoardLogger": ("glassloop.callbacks.tensorboard", "TensorBoardLogger"),
    "baselines": ("glassloop.tabular.baselines", "compare_baselines"),
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'glassloop' has no attribute {name!r}")
    module_name, attribute = _PUBLIC[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__all__ = ["__version__", *_PUBLIC]
