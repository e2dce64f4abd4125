"""glassloop: PyTorch training loops you can see through.

`import glassloop` needs only torch and numpy; MLflow, matplotlib, pandas and scikit-learn are imported where used.
"""

from glassloop.errors import CallbackError, CheckpointError, ConfigError, DataError, GlassloopError
from glassloop.state import History, LoopState

__version__ = "0.1.0"

__all__ = [
    "CallbackError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "GlassloopError",
    "History",
    "LoopState",
    "__version__",
]
