"""The benchmark workloads come from the package (glassloop.core.workloads): ssa (lesson 004) and wide."""

from __future__ import annotations

from glassloop.core.workloads import mlp, ssa, wide

WORKLOADS = {
    "ssa": {"data": ssa, "sizes": (4, 64, 64, 1), "batch_size": 64, "epochs": 60},
    "wide": {"data": wide, "sizes": (32, 256, 256, 1), "batch_size": 256, "epochs": 5},
}

__all__ = ["WORKLOADS", "mlp"]
