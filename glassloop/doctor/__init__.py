"""The loop doctor: static checks of a training script (GL1xx) and runtime probes (GL2xx).

`check_file(path)` / `check_source(text)` read a script without running it; `check(model, loss_fn, optimizer,
batch)` runs a few probe steps on copies of the state and restores everything afterwards.
"""

from __future__ import annotations

from glassloop.doctor.analyzer import check_file, check_source
from glassloop.doctor.findings import RULES, Finding, Rule


def check(*args, **kwargs):  # noqa: ANN002, ANN003 - thin lazy forwarder, see runtime.check
    """Runtime probes; see `glassloop.doctor.runtime.check`."""
    from glassloop.doctor.runtime import check as run_check

    return run_check(*args, **kwargs)


__all__ = ["RULES", "Finding", "Rule", "check", "check_file", "check_source"]
