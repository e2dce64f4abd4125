"""MLflow for a table run: the store opened quietly, the complete record of the network run, its baselines as
sibling runs, and a self-contained pyfunc model that takes raw rows (glassloop.tabular.mlflow_model)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from glassloop.callbacks.tracking import client as tracking_client
from glassloop.callbacks.tracking import quiet_mlflow
from glassloop.errors import ConfigError, one_line
from glassloop.tabular import record as records
from glassloop.tabular.baselines import log_baselines

MODEL_MODULE = Path(__file__).with_name("mlflow_model.py")
EXAMPLE_ROWS = 5




def open_store(uri: str | None) -> str:
    """The explicit URI, else MLflow's default, resolved (a relative SQLite path made absolute) and opened now."""
    import mlflow

    chosen = uri or mlflow.get_tracking_uri()
    if chosen.startswith("sqlite:///") and not chosen.startswith("sqlite:////") and ":memory:" not in chosen:
        chosen = f"sqlite:///{Path(chosen[len('sqlite:///'):]).resolve()}"
    try:
        with quiet_mlflow():
            tracking_client(chosen).search_experiments(max_results=1)  # schema created under the store's lock
    except Exception as error:  # MLflow raises many types for unusable stores
        raise ConfigError(f"cannot use MLflow tracking URI {chosen!r} ({type(error).__name__}: "
                          f"{one_line(str(error))[:160]}); expected e.g. sqlite:///mlflow.db or http://host:5000; "
                          "fix --tracking-uri or pass --no-mlflow") from None
    return chosen


def run_tags(record: records.RunRecord) -> dict[str, str]:
    return {"glassloop.role": "network", "glassloop.task": record.transform.task,
            "glassloop.target": record.transform.target}


def record_params(record: records.RunRecord) -> dict[str, str]:
    """Lesson 003's complete record of the network run: architecture, training, data, split."""
    options, split = record.options, record.split
    boundary = (f"train until {split.get('train_until')}, validate from {split.get('val_from')}"
                if split.get("method") == "temporal" else f"seeded hash/permutation, seed {split.get('seed')}")
    params = {
        "model.layer_sizes": "-".join(str(v) for v in record.model.sizes),
        "model.activation": record.model.activation,
        "model.dropout": record.model.dropout,
        "model.loss": record.model.loss,
        "train.optimizer": options.optimizer, "train.lr": options.lr, "train.weight_decay": options.weight_decay,
        "train.momentum": options.momentum, "train.scheduler": options.scheduler,
        "train.batch_size": options.batch_size, "train.epochs": options.epochs, "train.patience": options.patience,
        "train.seed": options.seed, "train.clip": options.clip,
        "train.class_weight": options.class_weight if record.model.class_weight is None
        else ",".join(f"{w:.6g}" for w in record.model.class_weight),
        "data.file": Path(record.data).name, "data.path": record.data, "data.sha256": record.data_sha256,
        "data.rows": record.data_rows, "data.train_rows": split.get("train_rows"),
        "data.val_rows": split.get("val_rows"), "data.impute": options.impute,
        "features": ",".join(record.transform.features), "target": record.transform.target,
        "task": record.transform.task, "split.kind": split.get("method"), "split.boundary": boundary,
        "split.val_fraction": options.val_fraction,
    }
    return {key: str(value)[:6000] for key, value in params.items()}


def _log_params(client: Any, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    existing = client.get_run(run_id).data.params
    items = [Param(k, v) for k, v in params.items() if k not in existing]  # a resume keeps the first values
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start:start + 100])


def log_run(out: Path, record: records.RunRecord, logger: Any, network: dict[str, float],
            baselines: dict[str, dict[str, Any]], model: Any, source: Any) -> dict[str, Any]:
    """Everything after the fit goes into the MLflowLogger's run; a tracking hiccup never loses the summary."""
    settings = record.mlflow
    run_id = getattr(logger, "run_id", None)
    try:

        with quiet_mlflow():
            info = log_baselines(baselines, tracking_uri=settings.tracking_uri, experiment=settings.experiment,
                                 parent_run_id=run_id, network=network,
                                 params={"split": record.split.get("method"),
                                         "train_rows": record.split.get("train_rows"),
                                         "val_rows": record.split.get("val_rows")})
            if run_id is not None:
                client = tracking_client(settings.tracking_uri)
                _log_params(client, run_id, record_params(record))
                info["model_uri"] = log_table_model(client, run_id, out, record, model, source)
        return info
    except Exception as error:  # the run is trained and saved
        print(f"glassloop fit: warning: could not finish the MLflow record ({type(error).__name__}: "
              f"{one_line(str(error))[:200]})", file=sys.stderr)
        return {"tracking_uri": settings.tracking_uri, "run_id": run_id, "error": one_line(str(error))[:500]}


def input_example(source: Any, transform: Any) -> Any:
    """A few raw training-table rows of the feature columns, in the table's own types (the signature then takes
    what `glassloop predict` reads from the same file); text levels as str."""
    from glassloop.tabular.reading import read_table

    example = read_table(source.path, columns=transform.features)[transform.features].head(EXAMPLE_ROWS).copy()
    for column in transform.categories:
        example[column] = example[column].astype(str)
    return example


def log_table_model(client: Any, run_id: str, out: Path, record: records.RunRecord, model: Any,
                    source: Any) -> str:
    """A models-from-code pyfunc: glassloop/tabular/mlflow_model.py + config.json + a weights-only state_dict."""
    import mlflow
    import torch
    from mlflow.models import infer_signature

    from glassloop.tabular.mlflow_model import TableModel

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bars on stderr
    transform = records.transform_of(record)
    example = input_example(source, transform)
    status = client.get_run(run_id).info.status
    package = Path(__file__).resolve().parent.parent  # the glassloop package: the model needs its transform code
    with tempfile.TemporaryDirectory(prefix="glassloop-model-") as folder:
        weights = Path(folder) / "weights.pt"
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
        output = TableModel.from_files(out / "config.json", weights).predict(None, example)
        previous = explicit_tracking_uri()  # None when the user never set one: restored as unset, not pinned
        mlflow.set_tracking_uri(record.mlflow.tracking_uri)
        try:
            with mlflow.start_run(run_id=run_id):
                info = mlflow.pyfunc.log_model(
                    name="table_model", python_model=str(MODEL_MODULE),
                    artifacts={"config": str(out / "config.json"), "weights": str(weights)},
                    signature=infer_signature(example, output), input_example=example,
                    code_paths=[str(package)], pip_requirements=_requirements())
        finally:
            mlflow.set_tracking_uri(previous)
            client.set_terminated(run_id, status)  # start_run/end_run would call it FINISHED: keep the logger's
    return info.model_uri


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("torch", "numpy", "pandas", "mlflow", "scikit-learn",
                                                     "pyarrow")]


def explicit_tracking_uri() -> str | None:
    """The URI set with `mlflow.set_tracking_uri`, or None when MLflow falls back to $MLFLOW_TRACKING_URI."""
    from mlflow.tracking._tracking_service import utils

    return getattr(utils, "_tracking_uri", None)
