"""Metrics by name: fn(outputs, targets) -> number, computed over a whole validation pass."""

from __future__ import annotations

from typing import Any

from glassloop.errors import ConfigError

METRICS = {
    "mae": lambda o, t: (o - t).abs().mean(),
    "mse": lambda o, t: ((o - t) ** 2).mean(),
    "rmse": lambda o, t: ((o - t) ** 2).mean().sqrt(),
    "accuracy": lambda o, t: (o.argmax(1) == t).float().mean() if o.dim() > 1 and o.shape[1] > 1
    else ((o > 0).long().view_as(t) == t.long()).float().mean(),
}


def make_metrics(metrics: Any) -> dict[str, Any]:
    if metrics is None:
        return {}
    if isinstance(metrics, (list, tuple)):
        metrics = {name: name for name in metrics}
    if not isinstance(metrics, dict):
        raise ConfigError(f"metrics={metrics!r} should be a dict name -> fn(outputs, targets), or a list of "
                          f"names from {', '.join(METRICS)}")
    built = {}
    for name, fn in metrics.items():
        if isinstance(fn, str):
            if fn not in METRICS:
                raise ConfigError(f"unknown metric {fn!r}; expected one of {', '.join(METRICS)} or a callable")
            fn = METRICS[fn]
        if not callable(fn):
            raise ConfigError(f"metric {name!r} is {fn!r}, not callable; pass fn(outputs, targets) -> number")
        built[name] = fn
    return built
