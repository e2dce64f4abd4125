"""The first wave's import path for the workloads; they live in `glassloop.core.workloads`."""

from glassloop.core.workloads import (
    count_parameters,
    house,
    linreg,
    mlp,
    mlp_parameters,
    quadratic,
    ssa,
    wide,
)

__all__ = ["count_parameters", "house", "linreg", "mlp", "mlp_parameters", "quadratic", "ssa", "wide"]
