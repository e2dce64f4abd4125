"""MLflow helpers written once, for the logger, `glassloop fit`'s baseline runs and `gl.sweep`'s runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def artifact_location(tracking_uri: str | None, experiment: str) -> str | None:
    """Beside the database for a local SQLite store; MLflow's default (./mlruns in the cwd) otherwise."""
    uri = tracking_uri or ""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    database = Path(uri[len("sqlite:///"):])
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)
    return (database.resolve().parent / "mlartifacts" / safe).as_uri()


def experiment_id(client: Any, name: str, tracking_uri: str | None) -> str:
    """The id of experiment `name`, created (or restored from deleted) if needed; safe when another process
    creates it at the same moment."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(tracking_uri, name))
    except Exception:  # another process created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
