"""Tracking helpers written once, for the MLflow and TensorBoard loggers, `glassloop fit`'s baseline runs and
`gl.sweep`'s runs:

- `client(tracking_uri)`: the one way glassloop opens an MLflow store. A new SQLite store is created under an
  exclusive `fcntl.flock` on `<db>.lock` beside the database: MLflow's schema creation (alembic migrations) is not
  safe when several processes create the same new file at once ("table `_alembic_tmp_experiments` already
  exists" breaks the store for good). MLflow's INFO lines (alembic's "Running upgrade ...") are silenced meanwhile.
- `experiment_id(client, name, tracking_uri)`: get or create an experiment, artifacts beside a SQLite database.
- `run_params(state)`: a fit's complete configuration as params (architecture, optimizer, schedule, patience, ...).
- `log_sibling_runs(...)`: baseline runs beside a network's run, with the same metric names.

Nothing here imports mlflow at module level: `import glassloop` stays light.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from glassloop.errors import ConfigError

# MLflow's limits per log_batch call and per param/tag value (mlflow/utils/validation.py).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 5000

# Scheduler state that changes while training (or is derived): not a hyper-parameter, so not a param.
SCHEDULER_RUNNING_STATE = {"last_epoch", "_step_count", "_get_lr_called_in_last_step", "_last_lr", "base_lrs",
                           "best", "num_bad_epochs", "cooldown_counter", "T_cur", "_is_initial", "eps",
                           "last_epoch_", "_initial_step", "verbose"}


# -- the store ---------------------------------------------------------------------------------------------------


def sqlite_path(tracking_uri: str | None) -> Path | None:
    """The database file of a `sqlite:///...` URI (relative to the cwd when it has three slashes), else None."""
    uri = tracking_uri or ""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def check_tracking_uri(tracking_uri: str | None) -> None:
    """Refuse, before anything is created, a URI that is not text, or a SQLite file that could never be made (its
    path runs through a file). A missing folder is fine: `client()` creates it."""
    if tracking_uri is None:
        return
    if not isinstance(tracking_uri, str) or not tracking_uri.strip():
        raise ConfigError(f"tracking_uri={tracking_uri!r} is not a URI; expected e.g. 'sqlite:///runs/mlflow.db', "
                          "'http://host:5000' or None for MLflow's default")
    database = sqlite_path(tracking_uri)
    if database is None:
        return
    if database.is_dir():
        raise ConfigError(f"tracking_uri={tracking_uri!r} names a folder; expected a database file inside it, e.g. "
                          f"'sqlite:///{database / 'mlflow.db'}'")
    folder = next((p for p in database.resolve().parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"tracking_uri={tracking_uri!r}: {str(folder)!r} is a file, so the database cannot be "
                          "created below it; point the URI at a folder")


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's and alembic's INFO lines (schema creation) kept off stderr; warnings and errors still show."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic", "alembic.runtime.migration")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def store_lock(database: Path | None) -> Iterator[None]:
    """An exclusive lock on `<db>.lock` held by this process (the OS drops it if the process dies)."""
    if database is None:
        yield
        return
    import fcntl

    lock = database.with_name(database.name + ".lock")
    try:
        handle = open(lock, "a")  # noqa: SIM115 - held open for the flock's whole life
    except OSError as error:
        raise ConfigError(f"cannot create the MLflow store lock {str(lock)!r} ({error.strerror}); expected a writable "
                          "folder for the SQLite store; fix its permissions or pass another tracking_uri") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def client(tracking_uri: str | None = None) -> Any:
    """An `MlflowClient` for `tracking_uri` (None: MLflow's default, `$MLFLOW_TRACKING_URI` or `sqlite:///mlflow.db`).

    For a SQLite store, building the client creates (or checks) the schema under the lock beside the database, so
    any number of processes may start on a fresh store at once."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or mlflow.get_tracking_uri()
    check_tracking_uri(uri)
    database = sqlite_path(uri)
    if database is not None:
        try:
            database.parent.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, never its folder
        except OSError as error:
            raise ConfigError(f"cannot create the folder of the MLflow store {uri!r} ({error.strerror}); expected "
                              "a writable location; fix tracking_uri") from None
    with quiet_mlflow(), store_lock(database):
        return MlflowClient(tracking_uri=uri)


def artifact_location(tracking_uri: str | None, experiment: str) -> str | None:
    """Beside the database for a local SQLite store; MLflow's default (./mlruns in the cwd) otherwise."""
    database = sqlite_path(tracking_uri)
    if database is None:
        return None
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


# -- sibling runs ------------------------------------------------------------------------------------------------


def log_sibling_runs(client: Any, experiment_id: str, parent_run_id: str | None,
                     results: dict[str, dict[str, Any]], params: dict[str, Any] | None = None,
                     tags: dict[str, Any] | None = None) -> dict[str, str]:
    """One finished run per entry of `results` (e.g. `{"ridge": {"val_mse": 0.12, "model": "Ridge"}}`), nested
    under `parent_run_id` in the UI, with the same metric names as the network's run so they compare column by
    column. Numbers become metrics (step 0), text becomes params, beside the shared `params`. Returns name -> run id.
    """
    from mlflow.entities import Metric, Param, RunTag

    run_ids: dict[str, str] = {}
    timestamp = int(time.time() * 1000)
    for name, values in results.items():
        run_tags = {"glassloop.role": "baseline", "glassloop.baseline": str(name), **(tags or {})}
        if parent_run_id is not None:
            run_tags |= {"glassloop.parent_run_id": parent_run_id, "mlflow.parentRunId": parent_run_id}
        run_id = client.create_run(experiment_id, run_name=f"baseline-{name}",
                                   tags={k: str(v)[:MAX_TAG_LENGTH] for k, v in run_tags.items()}).info.run_id
        metrics = [Metric(key, float(value), timestamp, 0) for key, value in values.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)]
        texts = {**(params or {}), **{k: v for k, v in values.items() if not isinstance(v, (int, float))
                                      or isinstance(v, bool)}}
        items = [Param(str(k), str(v)[:MAX_PARAM_LENGTH]) for k, v in texts.items()]
        for start in range(0, max(len(items), len(metrics), 1), MAX_PARAMS_PER_BATCH):
            client.log_batch(run_id, metrics=metrics[start:start + MAX_PARAMS_PER_BATCH],
                             params=items[start:start + MAX_PARAMS_PER_BATCH], tags=[RunTag("glassloop.sibling", "1")]
                             if start == 0 else [])
        client.set_terminated(run_id, "FINISHED")
        run_ids[str(name)] = run_id
    return run_ids


# -- params ------------------------------------------------------------------------------------------------------


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _text(value: Any) -> str:
    return str(value)[:MAX_PARAM_LENGTH]


def model_params(model: Any) -> dict[str, str]:
    """The architecture of any module from its leaf layers, in order: `model.layers` (e.g. `Linear(4, 16), ReLU,
    Dropout(p=0.1), Linear(16, 1)`), `model.sizes` (`4-16-1` for a chain of Linear layers, else `4x16, 16x1`),
    `model.hidden_sizes`, `model.activations` (class names) and `model.dropout` (each layer's p)."""
    layers, linear, activations, dropout = [], [], [], []
    for module in model.modules():
        if next(module.children(), None) is not None:
            continue  # containers (Sequential, the model itself): their leaves describe them
        kind = type(module).__name__
        if hasattr(module, "in_features") and hasattr(module, "out_features"):
            linear.append((int(module.in_features), int(module.out_features)))
            layers.append(f"{kind}({module.in_features}, {module.out_features})")
            continue
        extra = module.extra_repr()
        layers.append(f"{kind}({extra})" if extra else kind)
        if type(module).__module__ == "torch.nn.modules.activation" and kind not in activations:
            activations.append(kind)
        if type(module).__module__ == "torch.nn.modules.dropout":
            dropout.append(str(module.p))
    chain = all(a[1] == b[0] for a, b in zip(linear, linear[1:], strict=False))
    sizes = ([str(linear[0][0])] + [str(out) for _, out in linear]) if linear and chain else []
    return {
        "model.layers": _text(", ".join(layers)),
        "model.sizes": _text("-".join(sizes) if sizes else ", ".join(f"{a}x{b}" for a, b in linear) or "none"),
        "model.hidden_sizes": _text(",".join(sizes[1:-1]) or "none"),
        "model.activations": _text(",".join(activations) or "none"),
        "model.dropout": _text(",".join(dropout) or "none"),
    }


def run_params(state: Any) -> dict[str, str]:
    """Every fit setting that matters, as MLflow params (strings): `state.config` flattened, the architecture, the
    optimizer's hyper-parameters from its first param group (the LR it started with), the scheduler's settings and
    early stopping's patience."""
    params: dict[str, str] = {}
    for key, value in state.config.items():
        if key == "optimizer_defaults":  # the param group below is what the optimizer actually uses
            continue
        if isinstance(value, dict):
            params.update({f"{key}.{k}": _text(v) for k, v in value.items() if _scalar(v)})
        elif _scalar(value) or isinstance(value, (list, tuple)):
            params[key] = _text(value)
    if state.model is not None:
        params.update(model_params(state.model))
    params.update(_optimizer_params(state.optimizer))
    params.update(_scheduler_params(state.scheduler))
    params.update(_early_stopping_params(state.callbacks))
    return params


def _optimizer_params(optimizer: Any) -> dict[str, str]:
    params: dict[str, str] = {}
    if optimizer is None or not getattr(optimizer, "param_groups", None):
        return params
    group = optimizer.param_groups[0]
    for key, value in group.items():
        if key in ("params", "initial_lr") or not (_scalar(value) or isinstance(value, tuple)):
            continue
        params[f"optimizer.{key}"] = _text(group.get("initial_lr", value) if key == "lr" else value)
    params["optimizer.param_groups"] = str(len(optimizer.param_groups))
    for key in ("weight_decay", "momentum"):  # the names fit() takes, findable without the optimizer. prefix
        if key in group:
            params[key] = _text(group[key])
    return params


def _scheduler_params(scheduler: Any) -> dict[str, str]:
    if scheduler is None:
        return {"scheduler.class": "none"}
    params = {"scheduler.class": type(scheduler).__name__}
    try:
        settings = scheduler.state_dict()
    except Exception:  # noqa: BLE001 - a custom scheduler without state_dict: its class is enough
        settings = {}
    for key, value in settings.items():
        if key not in SCHEDULER_RUNNING_STATE and not key.startswith("_") and (
                _scalar(value) or isinstance(value, (list, tuple)) and all(_scalar(v) for v in value)):
            params[f"scheduler.{key}"] = _text(value)
    return params


def _early_stopping_params(callbacks: Any) -> dict[str, str]:
    from glassloop.callbacks.early_stopping import EarlyStopping

    stopper = next((c for c in callbacks or () if isinstance(c, EarlyStopping)), None)
    if stopper is None:
        return {"patience": "none"}
    return {"patience": str(stopper.patience), "early_stopping.monitor": stopper.monitor,
            "early_stopping.mode": stopper.mode, "early_stopping.min_delta": str(stopper.min_delta),
            "early_stopping.restore_best": str(stopper.restore_best)}


def hparams(state: Any) -> dict[str, Any]:
    """The same settings for TensorBoard's hparams plugin, typed so its table can sort and filter them: numbers
    as numbers, True/False as booleans, the rest as text."""
    return {key: _typed(text) for key, text in run_params(state).items()}


def _typed(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
