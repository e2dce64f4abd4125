"""Mixed precision: `torch.autocast` on the run's device, and a `GradScaler` for fp16.

    "32"        plain float32: nothing changes in the loop (the autocast context is a reusable no-op)
    "bf16"      autocast to bfloat16 (CPU and recent GPUs); same exponent range as float32, so no scaler
    "16-mixed"  autocast to float16 + GradScaler: the loss is scaled before backward, the gradients are
                unscaled before the gradient norm and clipping (the lesson's clip order stays right), and a
                step whose gradients overflowed is skipped by the scaler, not by the non-finite guard
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from glassloop.errors import ConfigError

DTYPES = {"bf16": torch.bfloat16, "16-mixed": torch.float16}


class Precision:
    """Attached as a producers-band callback when it has a scaler, so the Checkpoint saves its state."""

    band = "producers"

    def __init__(self, precision: str, device: torch.device) -> None:
        self.name = precision
        self.scaler: Any = None
        if precision == "32":
            self.autocast: Any = contextlib.nullcontext()
            return
        check_precision(precision, device)
        self.autocast = torch.autocast(device.type, dtype=DTYPES[precision])
        if precision == "16-mixed":
            self.scaler = torch.amp.GradScaler(device.type)

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)  # true gradients before the norm and the clip

    def step(self, optimizer: torch.optim.Optimizer, step: Any) -> None:
        if self.scaler is None:
            step()
        else:
            self.scaler.step(optimizer)  # skipped by the scaler itself when the gradients overflowed
            self.scaler.update()

    def skip_overflow(self, optimizer: torch.optim.Optimizer) -> None:
        """fp16 gradients overflowed: no update, a smaller scale next time (what GradScaler.step does)."""
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def check_precision(precision: str, device: torch.device) -> None:
    """A precision the device cannot run is refused before the first batch, with the fix."""
    if not torch.amp.is_autocast_available(device.type):
        raise ConfigError(f"precision={precision!r} needs torch.autocast on {device.type}, which this torch "
                          f"({torch.__version__}) does not offer; use precision='32'")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"precision='bf16' but {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                          "use precision='16-mixed' or '32'")
