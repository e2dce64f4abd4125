"""`glassloop fit | resume | predict` as library calls, each written once for every `TableSource`.

    fit_table(config, ...)      validate everything, then create --out (locked), write config.json, train, report
    resume_run(dir, ...)        continue from latest.pt, or start from config.json when killed before the first one
    predict_run(dir, data, ...) best.pt + the stored transform -> the input rows with predictions

The argv side lives in glassloop.cli.fit / resume / predict; nothing here knows about argv or exit codes but the
return value (0, 1 for a run whose metrics are not finite, 128 + signal when interrupted).
Under torchrun every rank reads the data; rank 0 alone checks and creates --out, the others wait for its record
(one broadcast, which also carries its error if it failed), and only rank 0 writes.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from glassloop.core.distributed import is_main_process
from glassloop.core.options import MAX_EPOCHS
from glassloop.errors import CheckpointError, ConfigError, DataError, GlassloopError, one_line
from glassloop.tabular import record as records
from glassloop.tabular import rundir
from glassloop.tabular.baselines import Metrics, compare, comparison_table, fit_baselines
from glassloop.tabular.data import FitConfig, balanced_class_weights
from glassloop.tabular.sources import TableSource, open_table, prediction_frames

RUN_FILES = ("config.json", "best.pt", "latest.pt", "summary.json", "history.csv", "curves.png")


# ----------------------------------------------------------------------------------------------- network
def outputs(model: Any, inputs: np.ndarray) -> np.ndarray:
    """The network's outputs for scaled inputs: one value per row, or class probabilities (softmax)."""
    import torch

    model.eval()
    with torch.no_grad():
        result = model(torch.as_tensor(np.ascontiguousarray(inputs, dtype=np.float32)))
    if result.dim() == 2 and result.shape[1] > 1:
        result = torch.softmax(result, dim=1)
    return result.numpy().astype(np.float64)


def network_metrics(model: Any, source: TableSource) -> dict[str, float]:
    """The network's validation metrics in the baselines' units (original target units, probabilities)."""
    transform = source.transform
    metrics = Metrics(transform.task)
    for x, y in source.val_chunks():
        scores = outputs(model, x)
        metrics.update(y, scores if transform.task == "classification" else transform.decode_predictions(scores))
    return metrics.result()


def load_weights(model: Any, path: Path, kind: str | None = None) -> dict[str, Any]:
    """Load a checkpoint's weights into the model config.json describes; a foreign or mismatched file (e.g. a
    best.pt copied from another run) is one CheckpointError line, not torch's multi-line report."""
    from glassloop.core.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path, kind=kind)
    state = checkpoint.get("model")
    if not isinstance(state, dict):
        raise CheckpointError(f"{str(path)!r} holds no model weights; expected a checkpoint written by this run; "
                              "restore it, or train again with 'glassloop fit'")
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    found = {key: tuple(getattr(value, "shape", ())) for key, value in state.items()}
    if found != expected:
        differ = sorted(set(expected) ^ set(found)) or [k for k in expected if expected[k] != found[k]]
        key = differ[0]
        raise CheckpointError(
            f"{str(path)!r} does not match the model in config.json (at {key!r}: checkpoint "
            f"{found.get(key, 'missing')}, config.json model {expected.get(key, 'missing')}); expected the "
            "checkpoint this run wrote (not one copied from another run); restore it, or train again with "
            "'glassloop fit'")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as error:  # e.g. a dtype that cannot be copied
        raise CheckpointError(f"{str(path)!r} cannot be loaded into the model in config.json "
                              f"({one_line(str(error))[:120]}); expected the checkpoint this run wrote; train "
                              "again with 'glassloop fit'") from None
    return checkpoint


def loss_of(record: records.RunRecord) -> Any:
    """The loss by name, or `nn.CrossEntropyLoss(weight=...)` with the recorded class weights."""
    if record.model.class_weight is None:
        return record.model.loss
    import torch
    from torch import nn

    return nn.CrossEntropyLoss(weight=torch.tensor(record.model.class_weight, dtype=torch.float32))


def train_network(model: Any, source: TableSource, out: Path, record: records.RunRecord, resume: bool,
                  start_epoch: int = 0) -> tuple[Any, Any, int | None]:
    """gl.fit with the run's options and callbacks. Returns (history, logger, exit code): the code is set when the
    caller must stop there (interrupted; or not rank 0). Otherwise the model holds best.pt's weights."""
    import glassloop as gl

    options = record.options
    callbacks, logger = run_callbacks(out, record, resume)
    history = gl.fit(
        model, source.train_data(options.batch_size, options.seed, start_epoch),
        source.val_data(options.batch_size, options.seed),
        loss=loss_of(record),  # logits vs class indices for cross_entropy; mse on the standardised target
        optimizer=options.optimizer, lr=options.lr, weight_decay=options.weight_decay, momentum=options.momentum,
        epochs=options.epochs, batch_size=options.batch_size, scheduler=options.scheduler,
        clip_grad_norm=options.clip, callbacks=callbacks, seed=options.seed,
        accumulate=options.accumulate, precision=options.precision, check_finite_every=options.check_finite_every,
        metrics=["accuracy"] if source.transform.task == "classification" else None,
    )
    if history.signal is not None:  # interrupted: latest.pt (or config.json alone) holds the position
        print(f"glassloop: run interrupted; continue it with: glassloop resume {out}", file=sys.stderr)
        return history, logger, 128 + history.signal
    if not is_main_process():
        return history, logger, 0  # under torchrun only rank 0 evaluates, compares and writes the summary
    if (out / "best.pt").exists():
        load_weights(model, out / "best.pt")
    return history, logger, None


def run_callbacks(out: Path, record: records.RunRecord, resume: bool) -> tuple[list[Any], Any]:
    """Early stopping, checkpoints in the run directory and (unless --no-mlflow) the MLflow logger. curves.png is
    drawn here afterwards (atomically), not by the Checkpoint."""
    import glassloop as gl

    callbacks: list[Any] = [gl.EarlyStopping(patience=record.options.patience),
                            gl.Checkpoint(out, resume=resume, plot=False)]
    logger = None
    if record.mlflow is not None:
        from glassloop.tabular.tracking import run_tags

        logger = gl.MLflowLogger(experiment=record.mlflow.experiment, tracking_uri=record.mlflow.tracking_uri,
                                 run_name=out.resolve().name + ("-resumed" if resume else ""),
                                 tags=run_tags(record), log_model=False)
        callbacks.append(logger)
    if record.options.tensorboard:
        callbacks.append(gl.TensorBoardLogger(record.options.tensorboard))
    return callbacks, logger


def draw_curves(out: Path, history: Any) -> Path | None:
    """curves.png, rendered in memory and written atomically (never through a symlink planted in the run dir)."""
    import io

    try:
        from glassloop.analysis.plots import plot_history
    except ImportError:  # no matplotlib: the checkpoint matters more than the picture
        return None
    buffer = io.BytesIO()
    plot_history(history).savefig(buffer, format="png", dpi=100)
    from glassloop.core import checkpoint

    checkpoint.write_file(buffer.getvalue(), out / "curves.png")
    return out / "curves.png"


# ----------------------------------------------------------------------------------------------- report
def network_summary(network: dict[str, float], record: records.RunRecord, history: Any) -> dict[str, Any]:
    from glassloop.core.state import shown_epoch

    return {
        **network,
        "model": f"MLP {'-'.join(str(v) for v in record.model.sizes)}",
        "best_epoch": shown_epoch(history.best_epoch),
        "epochs_run": len(history.records),
        "stop_reason": history.stop_reason,
        "best_val_loss": history.best_val_loss,
        "val_loss_note": "val_loss in history.csv is on the standardised target"
        if record.transform.task == "regression" else None,
    }


def report(out: Path, record: records.RunRecord, source: TableSource, model: Any, history: Any,
           logger: Any) -> int:
    """Network metrics, baselines on the same split, the verdict, MLflow, summary.json, the printed table."""
    options, task = record.options, source.transform.task
    network = network_metrics(model, source)
    sample_x, sample_y = source.baseline_rows(options.seed) if options.baselines else (np.zeros((0, 1)), None)
    baselines = fit_baselines((sample_x, sample_y), source.val_chunks(), task, options.baselines, options.seed,
                              source.transform.n_outputs if task == "classification" else None)
    sample_rows = len(sample_x) if options.baselines else None
    verdict = compare(network, baselines, task)
    curves = draw_curves(out, history)
    mlflow_info = None
    if logger is not None:
        from glassloop.tabular.tracking import log_run

        mlflow_info = log_run(out, record, logger, network, baselines, model, source)
    stream = source.summary(sample_rows)
    shown = {k: v | ({"fitted_on_rows": sample_rows} if stream else {}) for k, v in baselines.items()}
    summary = {"task": task, "target": source.transform.target, "data": record.data, "split": source.split_info,
               **({"streaming": stream} if stream else {}),
               "network": network_summary(network, record, history), "baselines": shown, "verdict": verdict,
               "mlflow": mlflow_info,
               "paths": {name: str(out.resolve() / name) for name in RUN_FILES if name != "summary.json"
                         and (name != "curves.png" or curves is not None)}}
    records.write_json(out / "summary.json", summary)
    print(comparison_table(network, baselines, task, history))
    if stream and baselines:
        print(f"(baselines fitted on a sample of {sample_rows} training rows; all validation rows scored)")
    print(verdict["text"])
    print(f"run saved in {out}/ (summary.json, config.json, best.pt); predict with: glassloop predict {out} "
          f"NEW.{'parquet' if stream else 'csv'}")
    return 0 if all(math.isfinite(v) for v in network.values()) else 1


def train_and_report(out: Path, record: records.RunRecord, source: TableSource, resume: bool,
                     start_epoch: int = 0) -> int:
    import torch

    torch.manual_seed(record.options.seed)  # the initial weights, before gl.fit seeds the batches
    model = records.model_from_record(record)
    history, logger, code = train_network(model, source, out, record, resume, start_epoch)
    if code is not None:
        return code
    return report(out, record, source, model, history, logger)


# ----------------------------------------------------------------------------------------------- fit
def tracking_uri(config: FitConfig) -> str:
    """The explicit --tracking-uri, else MLflow's own default, resolved now and stored so that `resume` logs to
    the same store from any directory. Opened here, last: a bad URI is bad input found before --out exists."""
    from glassloop.tabular.tracking import open_store

    return open_store(config.tracking_uri)


def disk_error(out: Path, error: OSError, started: bool) -> ConfigError:
    if started:
        return ConfigError(f"writing the run directory {str(out)!r} failed ({rundir.os_reason(error)}); expected a "
                           f"writable disk with free space; fix that, then 'glassloop resume {out}'")
    return ConfigError(f"writing the run directory {str(out)!r} failed ({rundir.os_reason(error)}) before the first "
                       "epoch was saved, so nothing was kept; expected a writable disk with free space; fix that or "
                       "choose another --out")


def start_run(out: Path, record: dict[str, Any], train: Callable[[], int]) -> int:
    """Create --out, lock it, write config.json, train. Validation is over: only now does --out appear.

    A Python error before the first latest.pt removes what this run created (the directories `mkdir` made, or
    the contents of the empty directory that was reused); an OSError becomes one ConfigError line. A kill or a
    signal leaves config.json, from which `glassloop resume` starts the run."""
    created = rundir.first_missing(out)
    lock = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = rundir.RunLock(out, f"glassloop resume {out}").acquire()
        records.write_json(out / "config.json", record)
    except OSError as error:
        rundir.discard_run(out, created)
        raise ConfigError(f"cannot create the run directory --out {str(out)!r} ({rundir.os_reason(error)}); "
                          "expected a writable location with free space; choose another --out") from None
    except BaseException:
        if lock is None or lock.fd is None:  # another process took it first: its directory, not ours
            raise
        raise
    try:
        return train()
    except BaseException as error:
        started = (out / "latest.pt").exists()
        if not started and not isinstance(error, KeyboardInterrupt):
            rundir.discard_run(out, created)
        if isinstance(error, OSError):
            raise disk_error(out, error, started) from None
        if isinstance(error, GlassloopError) and started and "glassloop resume" not in str(error):
            raise type(error)(f"{one_line(str(error))}; after fixing it, continue with 'glassloop resume {out}'") \
                from None
        raise
    finally:
        lock.release()


def fit_table(config: FitConfig, stream: bool = False, threshold_mb: float | None = None) -> int:
    """`glassloop fit`: validate everything, then create --out, train, compare, report."""
    for key, flag in (("data", "DATA"), ("target", "--target COL"), ("out", "--out DIR")):
        if getattr(config, key) is None:
            raise ConfigError(f"no {key} given; expected {flag} on the command line or {key} = ... in --config; add it")
    out = Path(config.out)
    from glassloop.tabular import ranks

    group = ranks.join_for_cli()
    try:
        if is_main_process():
            rundir.check_new_run_dir(out)
        data_path = Path(config.data).resolve()
        source = open_table(data_path, config, stream, threshold_mb)
        records.check_model_size(source.transform.n_inputs, list(config.hidden), source.transform.n_outputs)
        weights = _class_weights(config, source)
        record_dict = ranks.from_rank_zero(lambda: _new_record(data_path, config, out, source, weights))
        record = records.RunRecord.model_validate(record_dict)
        if not is_main_process():  # rank 0 created --out and wrote config.json; the others only train
            return train_and_report(out, record, source, resume=False)
        print(source.describe())
        if source.skipped:
            print(f"  skipped non-numeric columns: {', '.join(source.skipped[:12])} (name them in --features to "
                  "one-hot encode them)")
        return start_run(out, record_dict, lambda: train_and_report(out, record, source, resume=False))
    finally:
        ranks.leave(group)


def _class_weights(config: FitConfig, source: TableSource) -> list[float] | None:
    if config.class_weight != "balanced":
        return None
    if source.transform.task != "classification":
        raise ConfigError("--class-weight balanced applies to classification, but the target is a regression "
                          "target; drop --class-weight or pass --task classification")
    _, train_y = source.baseline_rows(config.seed)
    return balanced_class_weights(train_y, source.transform.n_outputs)


def _new_record(data_path: Path, config: FitConfig, out: Path, source: TableSource,
                weights: list[float] | None) -> dict[str, Any]:
    uri = tracking_uri(config) if config.mlflow else None
    return records.build_record(data_path, config, out, source.transform, source.split_info, uri, source.rows,
                                weights, source.record())


# ----------------------------------------------------------------------------------------------- resume
def resume_run(directory: str, mlflow: bool = True, epochs: int | None = None) -> int:
    """`glassloop resume DIR [--epochs N]`: rebuild data, transform and model from config.json, continue from
    latest.pt (or start from config.json when the run was killed before its first checkpoint). With `epochs`, a
    finished run is extended to N epochs (the Checkpoint refuses, in one line, what cannot be extended exactly)."""
    run_dir, record, raw = records.read_run(directory)
    lock = rundir.RunLock(run_dir, f"glassloop resume {run_dir}").acquire()
    try:
        if epochs is not None and epochs != record.options.epochs:
            if isinstance(epochs, bool) or not 1 <= epochs <= MAX_EPOCHS:
                raise ConfigError(f"--epochs {epochs} must be from 1 to {MAX_EPOCHS}; expected the total epochs to "
                                  "train to; fix --epochs")
            options = record.options.model_copy(update={"epochs": epochs})
            record = record.model_copy(update={"options": options})
            records.write_json(run_dir / "config.json", {**raw, "options": {**raw["options"], "epochs": epochs}})
        return _resume_locked(run_dir, record, raw, mlflow, extend=epochs is not None)
    except OSError as error:
        raise ConfigError(f"writing the run directory {str(run_dir)!r} failed ({rundir.os_reason(error)}); expected "
                          f"a writable disk with free space; fix that, then 'glassloop resume {run_dir}' again") from None
    finally:
        lock.release()


def _resume_locked(run_dir: Path, record: records.RunRecord, raw: dict[str, Any], mlflow: bool,
                   extend: bool = False) -> int:
    latest = run_dir / "latest.pt"
    start_epoch, started = 0, latest.is_file()
    if started:
        checkpoint = load_weights(records.model_from_record(record), latest, kind="latest")  # foreign: one line
        done = int(checkpoint.get("epoch", 0))
        if checkpoint.get("finished") and (run_dir / "summary.json").is_file() and not (
                extend and record.options.epochs > done):
            history = checkpoint.get("history") if isinstance(checkpoint.get("history"), dict) else {}
            print(f"glassloop resume: run in {run_dir} already finished ({history.get('stop_reason') or 'finished'}); "
                  f"nothing to resume. Its verdict is in {run_dir / 'summary.json'}; to train longer, "
                  f"'glassloop resume {run_dir} --epochs N' (N > {done}), or start a new run with 'glassloop fit'")
            return 0
        start_epoch = int(checkpoint.get("epoch", 0))
    else:
        print(f"glassloop resume: {run_dir} has no checkpoint yet (stopped before its first epoch was saved); "
              "starting it from its config.json")
    rundir.clean_temporaries(run_dir)
    data_path = Path(record.data)
    if data_path.is_file() and records.sha256(data_path) != record.data_sha256:
        raise DataError(f"data file {str(data_path)!r} changed since the run started (sha256 differs); expected the "
                        "same table; restore it, or start a new run with 'glassloop fit'")
    if not mlflow:
        record = record.model_copy(update={"mlflow": None})
    stream = record.streaming is not None
    source = open_table(data_path, record.options, stream=stream,
                        threshold_mb=None if not stream else 0.0)
    stored = records.transform_of(record)
    if source.transform.to_dict() != stored.to_dict():
        raise DataError(f"the table at {str(data_path)!r} no longer gives the stored transform; expected the same "
                        "data; start a new run with 'glassloop fit'")
    source.transform = stored
    return train_and_report(run_dir, record, source, resume=started, start_epoch=start_epoch)


# ----------------------------------------------------------------------------------------------- predict
def predict_run(directory: str, data: str, out: str | None, stream: bool = False,
                threshold_mb: float | None = None) -> int:
    """`glassloop predict DIR DATA [--out FILE]`: best.pt + the stored transform -> the rows with predictions."""
    run_dir, record, _ = records.read_run(directory)
    best = run_dir / "best.pt"
    if not best.is_file():
        raise ConfigError(f"{str(run_dir)!r} has no best.pt; expected a run that finished at least one epoch with a "
                          f"finite validation loss; train it further with 'glassloop resume {run_dir}'")
    target = rundir.check_output_file(out) if out is not None else None  # before any work
    if target is not None and target.exists():
        for name, path in [(f"the run's {n}", run_dir / n) for n in RUN_FILES] + [("the table to predict",
                                                                                  Path(data))]:
            if path.exists() and os.path.samefile(path, target):
                raise ConfigError(f"--out {out!r} is {name}; writing predictions there would destroy it; "
                                  "expected a new CSV path; choose another --out")
    lock = rundir.RunLock(run_dir, f"glassloop predict {run_dir} {data} --out {out}").acquire() if target else None
    try:
        model = records.model_from_record(record)
        load_weights(model, best)
        frames = prediction_frames(Path(data), records.transform_of(record), lambda x: outputs(model, x), stream,
                                   threshold_mb)
        rows = rundir.write_csv(frames, target)
    finally:
        if lock is not None:
            lock.release()
    if target is not None:
        print(f"wrote {rows} predictions to {out}{' (streamed)' if stream else ''}")
    return 0
