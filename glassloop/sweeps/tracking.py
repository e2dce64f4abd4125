"""MLflow for a sweep: a parent run (fixed options, summary) and one nested child run per configuration.

Uses MlflowClient, so the caller's active run (if any) is left untouched; children carry mlflow.parentRunId so
the UI nests them. Logged after training, so tracking costs no step time. Metric steps and epoch tags are
1-based (glassloop.core.state.shown_epoch), as everywhere a person looks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from glassloop.callbacks.tracking import client as tracking_client
from glassloop.callbacks.tracking import experiment_id
from glassloop.core.state import shown_epoch
from glassloop.errors import ConfigError
from glassloop.sweeps.result import SweepResult

MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch call


def mlflow_settings(settings: Any) -> dict[str, Any]:
    """`mlflow=True`, a tracking URI, or a dict with tracking_uri, experiment, run_name."""
    if settings is True:
        return {}
    if isinstance(settings, (str, Path)):
        return {"tracking_uri": str(settings)}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"mlflow={settings!r}; expected True, a tracking URI, or a dict with tracking_uri, "
                          "experiment, run_name")
    return dict(settings)


def log_to_mlflow(result: SweepResult, settings: Any, options: dict[str, Any]) -> str:
    """Log the sweep; returns the parent run's id."""
    try:
        from mlflow.entities import Metric, Param
    except ImportError:
        raise ConfigError("mlflow is not installed; pip install mlflow, or pass mlflow=None") from None
    settings = mlflow_settings(settings)
    uri = settings.get("tracking_uri")
    client = tracking_client(uri)
    experiment = experiment_id(client, settings.get("experiment", "glassloop-sweep"), uri)
    now = int(time.time() * 1000)
    parent_id = client.create_run(experiment, run_name=settings.get("run_name", "sweep"),
                                  tags={"glassloop.kind": "sweep"}).info.run_id
    best = result.table[result.best_index]
    client.log_batch(parent_id, params=[Param(k, str(v)) for k, v in options.items()]
                     + [Param("grid_keys", ",".join(result.grid_keys) or "-")],
                     metrics=[Metric(f"best_{result.monitor.removeprefix('best_')}", float(best[result.monitor]),
                                     now, 0), Metric("seconds", result.seconds, now, 0)])
    client.set_tag(parent_id, "best_index", str(best["index"]))
    for index, (config, history) in enumerate(zip(result.configs, result.histories)):
        row = result.table[index]
        tags = {"mlflow.parentRunId": parent_id, "glassloop.kind": "sweep-config"}
        if row["best_epoch"] is not None:
            tags["best_epoch"] = str(shown_epoch(row["best_epoch"]))
        child = client.create_run(experiment, run_name=f"config-{index}", tags=tags)
        metrics = [Metric(key, float(record[key]), now, shown_epoch(record["epoch"])) for record in history.records
                   for key in ("train_loss", "val_loss", "grad_norm", "lr")
                   if record.get(key) is not None and math.isfinite(record[key])]
        if row[result.monitor] is not None:
            metrics.append(Metric(result.monitor, float(row[result.monitor]), now, 0))
        client.log_batch(child.info.run_id, params=[Param(k, str(v)) for k, v in config.items()]
                         + [Param("index", str(index))])
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            client.log_batch(child.info.run_id, metrics=metrics[start:start + MAX_METRICS_PER_BATCH])
        client.set_terminated(child.info.run_id)
    client.set_terminated(parent_id)
    return parent_id
