"""MLflow tracking for `gl.fit`: params, per-epoch metrics, the final model, curves and diagnosis, and a run status
that says what happened (FINISHED, FAILED, KILLED), continued under the same run id after a resume.

It avoids the failures other trainers' MLflow integrations are known for (reference/anchors.md): a crashed run left
RUNNING, a resumed run split into a new run, logging that slows every step, and loggers that fight over the global
active run. Everything goes through an `MlflowClient` with an explicit run id (the fluent `mlflow.start_run` stack is
never touched). Each epoch's metrics are one `log_batch`, and epochs shorter than `flush_seconds` are gathered
into one call: a SQLite write costs ~5 ms of CPU, half of a 10 ms `ssa` epoch, and a background writer thread was
worse (it holds the GIL in SQLAlchemy code while the training thread waits). Nothing is lost to the delay: the end
of the fit, a failure and an interrupt all flush, and after a kill -9 the resumed logger backfills the missing epochs
from the checkpoint's History.

With `tracking_uri=None` the URI is MLflow's own default: `$MLFLOW_TRACKING_URI` if set, else (MLflow 3) a SQLite
file `mlflow.db` in the current directory (`sqlite:///<cwd>/mlflow.db`). When the logger creates the experiment in a
local SQLite store, its artifacts go beside the database (`<db dir>/mlartifacts/`) instead of MLflow's
`./mlruns` relative to wherever the process happened to start.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from glassloop.callbacks.tracking import experiment_id

# MLflow's limits per log_batch call and per param value (mlflow/utils/validation.py).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 5000

# Scheduler state that changes while training (or is derived): not a hyper-parameter, so not a param.
SCHEDULER_RUNNING_STATE = {"last_epoch", "_step_count", "_get_lr_called_in_last_step", "_last_lr", "base_lrs",
                           "best", "num_bad_epochs", "cooldown_counter", "T_cur", "_is_initial", "eps",
                           "last_epoch_", "_initial_step", "verbose"}


class MLflowLogger:
    """Log a `gl.fit` run to MLflow (params, per-epoch metrics with `step=epoch`, model, curves, diagnosis).

    `experiment`: experiment name (created if missing). `tracking_uri`: any MLflow URI; None = MLflow's default
    (`$MLFLOW_TRACKING_URI`, else `sqlite:///<cwd>/mlflow.db`). `run_name`: shown in the UI. `log_model`: log the
    final model with MLflow's PyTorch flavour at the end (`mlflow.pytorch.load_model(logger.model_uri)`).
    `tags`: extra run tags. `plot`: draw `curves.png` when no Checkpoint already drew it. `flush_seconds`: write
    the epochs gathered so far once this many seconds have passed since the last write (0: every epoch).

    After `fit`, `run_id` names the run and `seconds` says what the logging cost on the training thread (`start`,
    `epochs`, `end`, and within `end` the `plot` and the `model`). `state_dict()` holds the run id, so `gl.Checkpoint(dir, resume=True)`
    makes a fresh logger continue the same run (status back to RUNNING, metrics of every epoch exactly once).
    """

    band = "reporters"

    def __init__(self, experiment: str = "glassloop", tracking_uri: str | None = None, run_name: str | None = None,
                 log_model: bool = True, tags: dict[str, Any] | None = None, *, plot: bool = True,
                 flush_seconds: float = 1.0) -> None:
        self.experiment = experiment
        self.tracking_uri = tracking_uri
        self.run_name = run_name
        self.log_model = log_model
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.plot = plot
        self.flush_seconds = flush_seconds
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.model_uri: str | None = None
        self.status: str | None = None  # the status this logger last set
        self._client: Any = None
        self._pending: list[Any] = []  # metrics not yet written
        self._last_flush = 0.0
        self._flush_errors: list[str] = []
        self.seconds = {"start": 0.0, "epochs": 0.0, "end": 0.0, "plot": 0.0, "model": 0.0}
        self._active = False
        self._metric_class: Any = None

    @contextlib.contextmanager
    def _timed(self, part: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] += time.perf_counter() - started

    # -- resume ------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "tracking_uri": self.tracking_uri, "experiment": self.experiment}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")

    # -- events ------------------------------------------------------------------------------------------------

    def on_fit_start(self, state: Any) -> None:
        with self._timed("start"):
            self._open(state)

    def _open(self, state: Any) -> None:
        from glassloop.core.distributed import is_main_process

        if not is_main_process() or state.already_finished:
            return  # other ranks log nothing; a finished run is left exactly as it was
        import mlflow
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        self._metric_class = Metric
        self.tracking_uri = self.tracking_uri or mlflow.get_tracking_uri()
        self._client = MlflowClient(tracking_uri=self.tracking_uri)
        reopened = self.run_id is not None and self._reopen(state)
        if not reopened:
            self._create_run()
        self._log_params(state, reopened)
        if reopened:
            self._backfill(state)
        self._active = True
        self.status = "RUNNING"
        self._last_flush = time.perf_counter()

    def on_epoch_end(self, state: Any) -> None:
        if self._active:
            with self._timed("epochs"):
                self._epoch_end(state)

    def _epoch_end(self, state: Any) -> None:
        self._pending.extend(self._metrics(state.record))
        if time.perf_counter() - self._last_flush >= self.flush_seconds:
            try:
                self._flush()
            except Exception as error:  # noqa: BLE001 - a tracking hiccup must not kill training; retried later
                self._flush_errors.append(f"epoch {state.record['epoch'] + 1}: {type(error).__name__}: {error}")
                self._last_flush = time.perf_counter()

    def _flush(self) -> None:
        pending = self._pending
        for start in range(0, len(pending), MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=pending[start:start + MAX_METRICS_PER_BATCH])
        self._pending = []
        self._last_flush = time.perf_counter()

    def on_fit_end(self, state: Any) -> None:
        if not self._active:
            return
        interrupted = bool(state.interrupted_by)
        with self._timed("end"):
            self._finish(state, "KILLED" if interrupted else "FINISHED", final=not interrupted)

    def on_exception(self, state: Any) -> None:
        if not self._active:
            return
        error = state.exception
        killed = isinstance(error, KeyboardInterrupt) or bool(state.interrupted_by)
        try:
            self._finish(state, "KILLED" if killed else "FAILED", final=False, error=error)
        except Exception as failure:  # noqa: BLE001 - the training error is the one the user must see
            warnings.warn(f"MLflowLogger could not close run {self.run_id}: {failure}", stacklevel=2)

    # -- opening a run -----------------------------------------------------------------------------------------

    def _create_run(self) -> None:
        import glassloop

        self.experiment_id = experiment_id(self._client, self.experiment, self.tracking_uri)
        tags = {"glassloop.version": glassloop.__version__, **self.tags}
        run = self._client.create_run(self.experiment_id, run_name=self.run_name, tags=tags)
        self.run_id = run.info.run_id

    def _reopen(self, state: Any) -> bool:
        """Continue the checkpointed run id; a run missing from this store gets a new run and a warning."""
        client = self._client
        try:
            run = client.get_run(self.run_id)
        except Exception as error:  # noqa: BLE001 - e.g. resumed against another tracking URI
            warnings.warn(f"MLflow run {self.run_id} from the checkpoint is not in {self.tracking_uri} "
                          f"({type(error).__name__}); logging the resumed run as a new run", stacklevel=3)
            previous, self.run_id = self.run_id, None
            self._create_run()
            client.set_tag(self.run_id, "glassloop.resumed_from_run_id", previous)
            return False
        self.experiment_id = run.info.experiment_id
        client.update_run(self.run_id, status="RUNNING")
        resumes = int(run.data.tags.get("glassloop.resumes", "0")) + 1
        client.set_tag(self.run_id, "glassloop.resumes", str(resumes))
        return True

    def _log_params(self, state: Any, reopened: bool) -> None:
        from mlflow.entities import Param

        params = run_params(state)
        if reopened:  # MLflow refuses to change a param: keep the first value, note what a resume changed
            existing = self._client.get_run(self.run_id).data.params
            changed = {k: v for k, v in params.items() if k in existing and existing[k] != v}
            params = {k: v for k, v in params.items() if k not in existing}
            if changed:
                self._client.set_tag(self.run_id, "glassloop.resume_changed_params",
                                     ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))[:MAX_TAG_LENGTH])
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self._client.log_batch(self.run_id, params=items[start:start + MAX_PARAMS_PER_BATCH])

    def _backfill(self, state: Any) -> None:
        """Epochs the checkpoint has but the run lacks (e.g. killed between the two writes): log them once."""
        logged = {m.step for m in self._client.get_metric_history(self.run_id, "train_loss")}
        missing = [m for record in state.history.records if record.get("epoch") not in logged
                   for m in self._metrics(record)]
        for start in range(0, len(missing), MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=missing[start:start + MAX_METRICS_PER_BATCH])

    # -- per epoch ---------------------------------------------------------------------------------------------

    def _metrics(self, record: dict[str, Any]) -> list[Any]:
        """Every number in the epoch record except `epoch` itself; None (no validation) is skipped, NaN/Inf are
        kept (MLflow stores them) because a diverging epoch hidden from the curves is a lie."""
        step = int(record["epoch"])
        timestamp = int(time.time() * 1000)
        return [self._metric_class(key, float(value), timestamp, step) for key, value in record.items()
                if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)]

    # -- the end -----------------------------------------------------------------------------------------------

    def _finish(self, state: Any, status: str, final: bool, error: BaseException | None = None) -> None:
        """Log the closing artifacts/model/tags with the epochs still pending, and always leave the run terminated:
        if any of this fails the run is FAILED (never left RUNNING) and the error goes on to the loop."""
        self._active = False
        try:
            self._close(state, final, error)
        except BaseException:
            with contextlib.suppress(Exception):
                self._flush()  # keep the epochs if the failure was in the artifacts or the model
            self._client.set_terminated(self.run_id, "FAILED")
            self.status = "FAILED"
            raise
        self._client.set_terminated(self.run_id, status)
        self.status = status

    def _close(self, state: Any, final: bool, error: BaseException | None) -> None:
        from mlflow.entities import Metric, RunTag

        client, run_id, history = self._client, self.run_id, state.history
        if self._flush_errors:
            warnings.warn(f"MLflow writes of run {run_id} failed and were retried: " + "; ".join(self._flush_errors),
                          stacklevel=4)
        tags = {"glassloop.stop_reason": history.stop_reason or state.stop_reason or ""}
        if error is not None:
            tags["glassloop.error"] = f"{type(error).__name__}: {error}"
        if history.best_epoch is not None:
            tags["glassloop.best_epoch"] = str(history.best_epoch + 1)  # 1-based, as on screen
        diagnosis = _diagnose(history) if final and history.records else None
        if diagnosis is not None:
            tags.update(diagnosis_tags(diagnosis))
        with tempfile.TemporaryDirectory(prefix="glassloop-mlflow-") as folder:
            if history.records:
                self._write_artifacts(state, Path(folder), final, diagnosis)
                client.log_artifacts(run_id, folder)
        if final and self.log_model:
            with self._timed("model"):
                tags.update(self._log_model(state))
        metrics = []
        if final and history.best_val_loss is not None and history.best_epoch is not None:
            metrics.append(Metric("best_" + history.monitor, float(history.best_val_loss),
                                  int(time.time() * 1000), int(history.best_epoch)))
        # The pending epochs and the closing tags in one write (each SQLite commit costs ~5 ms).
        metrics = self._pending + metrics
        run_tags = [RunTag(k, str(v)[:MAX_TAG_LENGTH]) for k, v in tags.items()]
        for start in range(0, max(len(metrics), 1), MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=metrics[start:start + MAX_METRICS_PER_BATCH],
                             tags=run_tags if start == 0 else [])
        self._pending = []

    def _write_artifacts(self, state: Any, folder: Path, final: bool, diagnosis: Any) -> None:
        """history.csv always; at a normal end also curves.png (reusing the one a Checkpoint drew a moment ago in
        its own on_fit_end, which runs before the reporters) and diagnosis.json."""
        state.history.to_csv(folder / "history.csv")
        if not final:
            return
        drawn = next((Path(c.run_dir) / "curves.png" for c in state.callbacks
                      if type(c).__name__ == "Checkpoint" and getattr(c, "plot", False)), None)
        if drawn is not None and drawn.is_file():
            (folder / "curves.png").write_bytes(drawn.read_bytes())
        elif self.plot:
            try:
                with self._timed("plot"):
                    state.history.plot(folder / "curves.png")
            except ImportError:  # no plots module or matplotlib: the metrics matter more than the picture
                pass
        if diagnosis is not None:
            import json

            (folder / "diagnosis.json").write_text(json.dumps(diagnosis.to_dict(), indent=2))

    def _log_model(self, state: Any) -> dict[str, str]:
        """The model instance as it ends the fit (EarlyStopping(restore_best) has already put the best weights
        back), saved with the PyTorch flavour and logged as the run's `model/` artifact.

        `save_model` + `log_artifacts` rather than `mlflow.pytorch.log_model`: no global tracking URI or active
        run is needed, it costs ~40 ms instead of ~200 ms (log_model also creates a LoggedModel and re-logs the
        step's metrics), and `runs:/<run_id>/model` loads it. Explicit `pip_requirements` skip MLflow's
        environment inference; no input example, so no signature inference or serving-input validation.
        """
        import mlflow.pytorch
        import torch

        from glassloop.core.checkpoint import unwrap

        model = unwrap(state.model)
        requirements = [f"torch=={torch.__version__}"]
        with tempfile.TemporaryDirectory(prefix="glassloop-model-") as folder:
            # Pickle format (pt2 needs an input example and torch.export: seconds); MLflow warns about pickle on
            # every save: the caution is documented in docs/mlflow.md instead of printed after each fit.
            flavour_logger = logging.getLogger("mlflow.pytorch")
            level = flavour_logger.level
            flavour_logger.setLevel(logging.ERROR)
            try:
                mlflow.pytorch.save_model(model, Path(folder) / "model", pip_requirements=requirements,
                                          serialization_format="pickle")
            finally:
                flavour_logger.setLevel(level)
            self._client.log_artifacts(self.run_id, str(Path(folder) / "model"), "model")
        self.model_uri = f"runs:/{self.run_id}/model"
        restored = state.restored_epoch
        epoch = restored if restored is not None else (state.history.records[-1]["epoch"]
                                                       if state.history.records else None)
        tags = {"glassloop.model_uri": self.model_uri}
        if epoch is not None:
            tags["glassloop.model_epoch"] = str(int(epoch) + 1)  # 1-based: which epoch's weights were logged
        return tags


# -- params and diagnosis --------------------------------------------------------------------------------------


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _text(value: Any) -> str:
    return str(value)[:MAX_PARAM_LENGTH]


def run_params(state: Any) -> dict[str, str]:
    """Every fit setting that matters, as MLflow params (strings): `state.config` flattened, the optimizer's
    hyper-parameters from its first param group (the LR it started with), and the scheduler's settings."""
    params: dict[str, str] = {}
    for key, value in state.config.items():
        if key == "optimizer_defaults":  # the param group below is what the optimizer actually uses
            continue
        if isinstance(value, dict):
            params.update({f"{key}.{k}": _text(v) for k, v in value.items() if _scalar(v)})
        elif _scalar(value) or isinstance(value, (list, tuple)):
            params[key] = _text(value)
    optimizer = state.optimizer
    if optimizer is not None and getattr(optimizer, "param_groups", None):
        group = optimizer.param_groups[0]
        for key, value in group.items():
            if key in ("params", "initial_lr") or not (_scalar(value) or isinstance(value, tuple)):
                continue
            params[f"optimizer.{key}"] = _text(group.get("initial_lr", value) if key == "lr" else value)
        params["optimizer.param_groups"] = str(len(optimizer.param_groups))
    scheduler = state.scheduler
    if scheduler is not None:
        params["scheduler.class"] = type(scheduler).__name__
        try:
            settings = scheduler.state_dict()
        except Exception:  # noqa: BLE001 - a custom scheduler without state_dict: its class is enough
            settings = {}
        for key, value in settings.items():
            if key not in SCHEDULER_RUNNING_STATE and not key.startswith("_") and (
                    _scalar(value) or isinstance(value, (list, tuple)) and all(_scalar(v) for v in value)):
                params[f"scheduler.{key}"] = _text(value)
    return params


def _diagnose(history: Any) -> Any:
    try:
        from glassloop.analysis.diagnosis import diagnose
    except ImportError:
        return None
    try:
        return diagnose(history)
    except Exception:  # noqa: BLE001 - a diagnosis bug must not lose the run's status
        return None


def diagnosis_tags(diagnosis: Any) -> dict[str, str]:
    """`glassloop.analysis.diagnosis.label` and `.codes` (plus the diagnosis module's own tags) as MLflow tags."""
    tags = dict(diagnosis.tags()) if callable(getattr(diagnosis, "tags", None)) else {}
    tags["glassloop.analysis.diagnosis.label"] = str(diagnosis.label)
    tags["glassloop.analysis.diagnosis.codes"] = ",".join(str(f.code) for f in diagnosis.findings)
    return tags
