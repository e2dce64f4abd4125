"""Devices, seeds and moving batches: where the run happens and how it starts."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from glassloop.errors import ConfigError


class DeviceError(ConfigError):
    """The device asked for is not one this machine can train on."""


def resolve_device(device: Any) -> torch.device:
    """'auto' -> CUDA, then MPS, then the CPU; a named device is checked here, before anything moves to it."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'") from None
    if chosen.type == "cuda" and (not torch.cuda.is_available()
                                  or (chosen.index or 0) >= torch.cuda.device_count()):
        raise DeviceError(f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA device(s) "
                          f"(torch {torch.__version__}); use device='auto' or 'cpu'")
    if chosen.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"device={device!r} but MPS is not available here; use device='auto' or 'cpu'")
    if chosen.type == "meta":
        raise DeviceError(f"device={device!r} holds shapes without data, so nothing can train on it; "
                          "use device='auto', 'cpu' or 'cuda'")
    if chosen.type not in ("cpu", "cuda", "mps"):
        # Accelerators torch knows by name (xpu, mtia, ...) answer is_available(); the others it cannot train on.
        backend = getattr(torch, chosen.type, None)
        available = getattr(backend, "is_available", None)
        if not (callable(available) and available()):
            raise DeviceError(f"device={device!r} is not available here (torch {torch.__version__} finds no "
                              f"{chosen.type} device); use device='auto', 'cpu' or 'cuda'")
    return chosen


def move_to(batch: Any, device: torch.device) -> Any:
    """Tensors inside tuples, lists and dicts go to `device` (a no-op when they are already there)."""
    if isinstance(batch, torch.Tensor):
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        items = [move_to(item, device) for item in batch]
        if isinstance(batch, list):
            return items
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)  # namedtuple: positional
    if isinstance(batch, dict):
        return {key: move_to(value, device) for key, value in batch.items()}
    return batch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (lesson 003: set all three)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
