"""MLflow tracking for `gl.fit`: params, per-epoch metrics, the final model, curves and diagnosis, and a run status
that says what happened (FINISHED, FAILED, KILLED), continued under the same run id after a resume.

It avoids the failures other trainers' MLflow integrations are known for: a crashed run left RUNNING, a resumed
run split into a new run, logging that slows every step, and loggers that fight over the global active run.
Everything goes through an `MlflowClient` with an explicit run id (the fluent `mlflow.start_run` stack is never
touched). Each epoch's metrics are one `log_batch`, and epochs shorter than `flush_seconds` are gathered into one
call: a SQLite write costs ~5 ms of CPU, half of a 10 ms `ssa` epoch, and a background writer thread was worse (it
holds the GIL in SQLAlchemy code while the training thread waits). Nothing is lost to the delay: the end of the
fit, a failure and an interrupt all flush, and after a kill -9 the resumed logger reconciles the run from the
checkpoint's History (missing epochs backfilled once, the final status set, even for a run that had finished).

The store is opened lazily, when the first epoch has ended: bad input (an option, a first batch that a guard
refuses) creates no `mlflow.db` and no run. Metric steps and tags are 1-based epochs, as on screen
(`glassloop.core.state.shown_epoch`).
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

from glassloop.callbacks.tracking import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_PER_BATCH,
    MAX_TAG_LENGTH,
    check_tracking_uri,
    client,
    experiment_id,
    log_sibling_runs,
    run_params,
)
from glassloop.core.state import shown_epoch
from glassloop.errors import ConfigError

__all__ = ["MLflowLogger", "diagnosis_tags", "run_params"]

EXAMPLE_ROWS = 5  # training input rows kept for the logged model's input example and signature


class MLflowLogger:
    """Log a `gl.fit` run to MLflow (params, per-epoch metrics with `step=epoch + 1`, model, curves, diagnosis).

    `experiment`: experiment name (created if missing). `tracking_uri`: any MLflow URI; None = MLflow's default
    (`$MLFLOW_TRACKING_URI`, else `sqlite:///<cwd>/mlflow.db`). `run_name`: shown in the UI. `log_model`: log the
    final model with MLflow's PyTorch flavour at the end, with a signature and an input example (loadable with
    `mlflow.pytorch.load_model` and `mlflow.pyfunc.load_model`). `tags`: extra run tags. `plot`: draw `curves.png`
    when no Checkpoint already drew it. `flush_seconds`: write the epochs gathered so far once this many seconds
    have passed since the last write (0: every epoch).

    After `fit`, `run_id` names the run, `seconds` says what the logging cost on the training thread (`start`,
    `epochs`, `end`, and within `end` the `plot` and the `model`), and `log_baselines(results)` adds sibling runs.
    `state_dict()` holds the run id, so `gl.Checkpoint(dir, resume=True)` makes a fresh logger continue the same run.
    """

    band = "reporters"

    def __init__(self, experiment: str = "glassloop", tracking_uri: str | None = None, run_name: str | None = None,
                 log_model: bool = True, tags: dict[str, Any] | None = None, *, plot: bool = True,
                 flush_seconds: float = 1.0) -> None:
        if not isinstance(experiment, str) or not experiment.strip():
            raise ConfigError(f"MLflowLogger experiment={experiment!r}; expected a non-empty name, e.g. 'ssa'")
        check_tracking_uri(tracking_uri)
        if isinstance(flush_seconds, bool) or not isinstance(flush_seconds, (int, float)) or not flush_seconds >= 0:
            raise ConfigError(f"MLflowLogger flush_seconds={flush_seconds!r}; expected a number >= 0 (0: every epoch)")
        self.experiment = experiment
        self.tracking_uri = tracking_uri
        self.run_name = run_name
        self.log_model = log_model
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.plot = plot
        self.flush_seconds = float(flush_seconds)
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.model_uri: str | None = None
        self.status: str | None = None  # the status this logger last set
        self._client: Any = None
        self._pending: list[Any] = []  # metrics not yet written
        self._last_flush = 0.0
        self._flush_errors: list[str] = []
        self.seconds = {"start": 0.0, "epochs": 0.0, "end": 0.0, "plot": 0.0, "model": 0.0}
        self._active = False  # a run is open and this logger will close it
        self._tried = False  # the store was opened (or opening failed) in this fit
        self._example: Any = None
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
        from glassloop.core.distributed import is_main_process

        self._active, self._tried, self._pending, self._flush_errors = False, False, [], []
        if not restored(state):
            self.run_id = None  # a new fit is a new run (a resume restored the id just before, in Checkpoint)
        if is_main_process() and restored(state) and self.run_id is not None:
            with self._timed("start"):  # the store exists already: reconcile the record now
                self._open(state)

    def _ensure_open(self, state: Any) -> None:
        """A new run is created once the first epoch has ended, so bad input never leaves a store behind."""
        from glassloop.core.distributed import is_main_process

        if not self._tried and is_main_process():
            with self._timed("start"):
                self._open(state)

    def _open(self, state: Any) -> None:
        from mlflow.entities import Metric

        self._tried = True
        self._metric_class = Metric
        self._client = client(self.tracking_uri)
        self.tracking_uri = self._client.tracking_uri
        self._example = example_inputs(state)
        run = self._reopen(state) if self.run_id is not None else None
        if run is None:
            self._create_run()
        elif state.already_finished:
            if self._closed(run, state):
                self.status = run.info.status  # finished and complete in the store: nothing to repair
                return
            # killed between the last checkpoint and the close: backfill and close it now
            self._client.set_tag(self.run_id, "glassloop.reconciled", "true")
        self._log_params(state, reopened=run is not None)
        if restored(state):
            self._backfill(state)
        self._active = True
        self.status = "RUNNING"
        self._last_flush = time.perf_counter()

    def on_epoch_end(self, state: Any) -> None:
        if not self._tried:
            self._ensure_open(state)
        if self._active:
            with self._timed("epochs"):
                self._epoch_end(state)

    def _epoch_end(self, state: Any) -> None:
        self._pending.extend(self._metrics(state.record))
        if time.perf_counter() - self._last_flush >= self.flush_seconds:
            try:
                self._flush()
            except Exception as error:  # noqa: BLE001 - a tracking hiccup must not kill training; retried later
                self._flush_errors.append(f"epoch {shown_epoch(state.record['epoch'])}: {type(error).__name__}: "
                                          f"{error}")
                self._last_flush = time.perf_counter()

    def _flush(self) -> None:
        pending = self._pending
        for start in range(0, len(pending), MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=pending[start:start + MAX_METRICS_PER_BATCH])
        self._pending = []
        self._last_flush = time.perf_counter()

    def on_fit_end(self, state: Any) -> None:
        if not self._tried and state.history.records:
            self._ensure_open(state)  # a finished run resumed without a run id: record it now
        if not self._active:
            return
        interrupted = bool(state.interrupted_by)
        with self._timed("end"):
            self._finish(state, "KILLED" if interrupted else "FINISHED", final=not interrupted)

    def on_exception(self, state: Any) -> None:
        if not self._active:
            return  # no run yet (the first epoch never ended): nothing was created, nothing to close
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

    def _reopen(self, state: Any) -> Any:
        """Continue the checkpointed run id (None: it is not in this store, a new run is created instead)."""
        client_ = self._client
        try:
            run = client_.get_run(self.run_id)
        except Exception as error:  # noqa: BLE001 - e.g. resumed against another tracking URI
            warnings.warn(f"MLflow run {self.run_id} from the checkpoint is not in {self.tracking_uri} "
                          f"({type(error).__name__}); logging the resumed run as a new run", stacklevel=3)
            previous, self.run_id = self.run_id, None
            self._create_run()
            client_.set_tag(self.run_id, "glassloop.resumed_from_run_id", previous)
            return None
        self.experiment_id = run.info.experiment_id
        if state.already_finished:
            return run  # its status is set once, at the close
        client_.update_run(self.run_id, status="RUNNING")
        resumes = int(run.data.tags.get("glassloop.resumes", "0")) + 1
        client_.set_tag(self.run_id, "glassloop.resumes", str(resumes))
        return run

    def _closed(self, run: Any, state: Any) -> bool:
        """The run already says everything the finished checkpoint knows: status, closing tags, model, epochs."""
        tags = run.data.tags
        if run.info.status != "FINISHED" or "glassloop.stop_reason" not in tags:
            return False
        if self.log_model and "glassloop.model_uri" not in tags:
            return False
        return self._logged_steps() >= {shown_epoch(r["epoch"]) for r in state.history.records}

    def _logged_steps(self) -> set[int]:
        return {m.step for m in self._client.get_metric_history(self.run_id, "train_loss")}

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
        logged = self._logged_steps()
        missing = [m for record in state.history.records if shown_epoch(record["epoch"]) not in logged
                   for m in self._metrics(record)]
        for start in range(0, len(missing), MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.run_id, metrics=missing[start:start + MAX_METRICS_PER_BATCH])

    # -- per epoch ---------------------------------------------------------------------------------------------

    def _metrics(self, record: dict[str, Any]) -> list[Any]:
        """Every number in the epoch record except `epoch` itself, at step epoch + 1; None (no validation) is
        skipped, NaN/Inf are kept (MLflow stores them) because a diverging epoch hidden from the curves is a lie."""
        step = shown_epoch(int(record["epoch"]))
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
        from mlflow.entities import RunTag

        client_, run_id, history = self._client, self.run_id, state.history
        if self._flush_errors:
            warnings.warn(f"MLflow writes of run {run_id} failed and were retried: " + "; ".join(self._flush_errors),
                          stacklevel=4)
        tags = {"glassloop.stop_reason": history.stop_reason or state.stop_reason or ""}
        if error is not None:
            tags["glassloop.error"] = f"{type(error).__name__}: {error}"
        if history.best_epoch is not None:
            tags["glassloop.best_epoch"] = str(shown_epoch(history.best_epoch))
        diagnosis = _diagnose(history) if final and history.records else None
        if diagnosis is not None:
            tags.update(diagnosis_tags(diagnosis))
        with tempfile.TemporaryDirectory(prefix="glassloop-mlflow-") as folder:
            if history.records:
                self._write_artifacts(state, Path(folder), final, diagnosis)
                client_.log_artifacts(run_id, folder)
        if final and self.log_model:
            with self._timed("model"):
                tags.update(self._log_model(state))
        metrics = []
        if final and history.best_val_loss is not None and history.best_epoch is not None:
            metrics.append(self._metric_class("best_" + history.monitor, float(history.best_val_loss),
                                              int(time.time() * 1000), shown_epoch(history.best_epoch)))
        # The pending epochs and the closing tags in one write (each SQLite commit costs ~5 ms).
        metrics = self._pending + metrics
        run_tags = [RunTag(k, str(v)[:MAX_TAG_LENGTH]) for k, v in tags.items()]
        for start in range(0, max(len(metrics), 1), MAX_METRICS_PER_BATCH):
            client_.log_batch(run_id, metrics=metrics[start:start + MAX_METRICS_PER_BATCH],
                              tags=run_tags if start == 0 else [])
        self._pending = []

    def _write_artifacts(self, state: Any, folder: Path, final: bool, diagnosis: Any) -> None:
        """history.csv always; at a normal end also curves.png (reusing the one a Checkpoint drew a moment ago in
        its own on_fit_end, which runs before the reporters) and diagnosis.json."""
        from glassloop.callbacks.checkpoint import Checkpoint

        state.history.to_csv(folder / "history.csv")
        if not final:
            return
        drawn = next((Path(c.run_dir) / "curves.png" for c in state.callbacks
                      if isinstance(c, Checkpoint) and c.plot), None)
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
        back), saved with the PyTorch flavour (which carries the pyfunc flavour) as the run's `model/` artifact.

        `save_model` + `log_artifacts` rather than `mlflow.pytorch.log_model`: no global tracking URI or active
        run is needed, it costs ~40 ms instead of ~200 ms (log_model also creates a LoggedModel and re-logs the
        step's metrics), and `runs:/<run_id>/model` loads it. Explicit `pip_requirements` skip MLflow's
        environment inference; the signature is computed here from the input example, so MLflow runs no
        inference or serving-input validation of its own.
        """
        import mlflow.pytorch
        import torch

        from glassloop.core.checkpoint import unwrap

        model = unwrap(state.model)
        signature, example = model_signature(model, self._example)
        requirements = [f"torch=={torch.__version__}"]
        with tempfile.TemporaryDirectory(prefix="glassloop-model-") as folder:
            # Pickle format (pt2 needs torch.export: seconds); MLflow warns about pickle on every save: the caution
            # is documented in docs/mlflow.md instead of printed after each fit.
            flavour_logger = logging.getLogger("mlflow.pytorch")
            level = flavour_logger.level
            flavour_logger.setLevel(logging.ERROR)
            try:
                mlflow.pytorch.save_model(model, Path(folder) / "model", pip_requirements=requirements,
                                          serialization_format="pickle", signature=signature, input_example=example)
            finally:
                flavour_logger.setLevel(level)
            self._client.log_artifacts(self.run_id, str(Path(folder) / "model"), "model")
        self.model_uri = f"runs:/{self.run_id}/model"
        restored = state.restored_epoch
        epoch = restored if restored is not None else (state.history.records[-1]["epoch"]
                                                       if state.history.records else None)
        tags = {"glassloop.model_uri": self.model_uri}
        if epoch is not None:
            tags["glassloop.model_epoch"] = str(shown_epoch(int(epoch)))  # which epoch's weights were logged
        return tags

    # -- beside the run ----------------------------------------------------------------------------------------

    def log_baselines(self, results: dict[str, dict[str, Any]], params: dict[str, Any] | None = None) -> dict[str, str]:
        """Log baselines (e.g. scikit-learn models on the same split) as sibling runs of this fit's run, nested under
        it in the UI, with the same metric names: `logger.log_baselines({"ridge": {"val_loss": 0.12}})` after
        `gl.fit`. Numbers become metrics, text becomes params. Returns name -> run id."""
        if self.run_id is None:
            raise ConfigError("MLflowLogger.log_baselines() needs this logger's run; call it after "
                              "gl.fit(..., callbacks=[logger]) has trained at least one epoch")
        if not isinstance(results, dict) or not all(isinstance(v, dict) for v in results.values()):
            raise ConfigError(f"log_baselines(results={type(results).__name__}); expected a dict name -> "
                              "{metric: value}, e.g. {'ridge': {'val_loss': 0.12}}")
        client_ = self._client or client(self.tracking_uri)
        experiment = self.experiment_id or client_.get_run(self.run_id).info.experiment_id
        return log_sibling_runs(client_, experiment, self.run_id, results, params)


# -- the model's input example, signature and diagnosis --------------------------------------------------------


def restored(state: Any) -> bool:
    """A Checkpoint restored this fit from latest.pt: a run to continue, or one that had already finished."""
    return bool(state.resumed or state.already_finished)


def example_inputs(state: Any) -> Any:
    """The first rows of the training inputs (CPU copy) when they are one tensor and fit computes the loss itself;
    None otherwise (a custom compute_loss or a non-tensor batch: the model is logged without a signature)."""
    import torch

    if state.config.get("compute_loss"):
        return None
    tensors = getattr(state.batcher, "tensors", None)
    inputs = tensors[0] if tensors else None
    if inputs is None and isinstance(state.batch, (tuple, list)) and len(state.batch) == 2:
        inputs = state.batch[0]  # another source: the batch the loop saw (set when batch callbacks are attached)
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or not inputs.is_floating_point():
        return None
    return inputs[:EXAMPLE_ROWS].detach().to("cpu", copy=True)


def model_signature(model: Any, example: Any) -> tuple[Any, Any]:
    """MLflow's signature from the example and the model's output on it (eval mode, no_grad, mode restored), and
    the example as a numpy array; (None, None) when there is no example or the model does not return a tensor."""
    if example is None:
        return None, None
    import torch
    from mlflow.models import infer_signature

    parameter = next(model.parameters(), None)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            outputs = model(example.to(parameter.device if parameter is not None else "cpu"))
    except Exception:  # noqa: BLE001 - the model is still worth logging without a signature
        return None, None
    finally:
        model.train(was_training)
    if not isinstance(outputs, torch.Tensor):
        return None, None
    inputs = example.numpy()
    return infer_signature(inputs, outputs.detach().cpu().numpy()), inputs


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
