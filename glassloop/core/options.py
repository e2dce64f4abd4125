"""The options of `fit`, checked before anything is built."""

from __future__ import annotations

import math
from typing import Any

from glassloop.errors import ConfigError

# Bounds shared by gl.fit, gl.sweep and the command line (one place, so they always agree).
MAX_SEED = 2**63 - 1  # torch.manual_seed takes 64-bit seeds
MAX_BATCH_SIZE = 2**31  # as glassloop fit; torch's split cannot take a size past 64 bits
MAX_EPOCHS = 1_000_000  # `glassloop sweep` flags, as glassloop fit
MAX_CONFIGURATIONS = 10_000  # `glassloop sweep`: K models stacked in one tensor
MAX_PARAMETERS = 200_000_000  # `glassloop sweep`: K x parameters of one model, as glassloop fit's limit


def check_options(options: dict[str, Any]) -> None:
    """The scalar options of `fit`, checked before anything is built."""
    _check_number("epochs", options["epochs"], 1, integer=True)
    _check_number("clip_grad_norm", options["clip_grad_norm"], 0, allow_none=True)
    if options["clip_grad_norm"] == 0:
        raise ConfigError("clip_grad_norm=0 would zero every gradient; use a positive max norm such as 1.0, "
                          "or None for no clipping")
    seed = options["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise ConfigError(f"seed={seed!r} must be an integer from 0 to 2**63 - 1, or None")
    if options["scheduler_step"] not in ("auto", "epoch", "batch"):
        raise ConfigError(f"scheduler_step={options['scheduler_step']!r}; expected 'auto', 'epoch' or 'batch'")
    if not isinstance(options["shuffle"], bool):
        raise ConfigError(f"shuffle={options['shuffle']!r} must be True or False")
    if options["progress"] not in ("auto", True, False, None):
        raise ConfigError(f"progress={options['progress']!r}; expected 'auto', True or False")


def _check_number(name: str, value: Any, minimum: float, allow_none: bool = False, integer: bool = False) -> None:
    if value is None and allow_none:
        return
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or value < minimum:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name}={value!r} must be {kind} >= {minimum}")
