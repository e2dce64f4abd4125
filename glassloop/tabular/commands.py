"""`glassloop fit | resume | predict`: lesson 003's day as three commands.

    glassloop fit DATA.csv --target COL --out DIR [options | --config FILE.toml]
    glassloop resume DIR
    glassloop predict DIR NEW.csv [--out preds.csv]

`fit` validates every option and the whole table first and creates `--out` only after that, so bad input
leaves nothing behind (exit 2, one line). It then trains an MLP with `glassloop.fit` (early stopping,
checkpoints, MLflow), trains scikit-learn baselines on exactly the same split, and says whether the network
beat them. The run directory holds `config.json` (everything needed to rebuild the model and the transform),
`latest.pt`, `best.pt`, `history.csv`, `summary.json` (and `curves.png` when plotting is available).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from glassloop.cli import ArgumentParser
from glassloop.core.distributed import is_main_process
from glassloop.errors import CheckpointError, ConfigError, DataError, one_line

CONFIG_VERSION = 1


# ----------------------------------------------------------------------------------------------- parsers
def _csv_list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise argparse.ArgumentTypeError(f"got {text!r}; expected comma-separated names like a,b,c")
    return items


def _hidden(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "linear"):
        return []  # no hidden layer: a linear model (lesson 002's nn.Linear)
    try:
        return [int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; expected layer sizes like 64,64 (or none)") from None


def _baselines(text: str) -> list[str]:
    return [] if text.strip().lower() == "none" else _csv_list(text)


def fit_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="glassloop fit", allow_abbrev=False,
                            description="Train an MLP on a CSV/Parquet table and compare it with scikit-learn baselines.")
    add = parser.add_argument
    add("data", nargs="?", help="the table (.csv or .parquet); may also come from --config")
    add("--target", help="column to predict")
    add("--out", help="run directory to create (must not exist, or be empty)")
    add("--config", help="TOML file with any of these options (flags override it)")
    add("--features", type=_csv_list, help="input columns (default: every numeric column but the target)")
    add("--split", choices=["random", "temporal"], help="random (seeded) or temporal (default when --time-column)")
    add("--time-column", help="date/time column: validation rows are strictly later than training rows")
    add("--val-fraction", type=float, help="share of rows for validation (default 0.2)")
    add("--task", choices=["regression", "classification"], help="default: inferred from the target")
    add("--hidden", type=_hidden, help="hidden layer sizes, e.g. 64,64 (default); none = linear model")
    add("--dropout", type=float, help="dropout after each hidden layer (default 0)")
    add("--epochs", type=int, help="most epochs (default 200; early stopping usually ends sooner)")
    add("--batch-size", type=int, help="default 32")
    add("--lr", type=float, help="learning rate (default 1e-3)")
    add("--optimizer", choices=["sgd", "adam", "adamw"], help="default adam")
    add("--momentum", type=float, help="SGD momentum (default 0)")
    add("--weight-decay", type=float, help="default 0")
    add("--scheduler", choices=["step", "exponential", "cosine", "warmup_cosine", "plateau", "onecycle"])
    add("--clip", type=float, help="clip the gradient norm to this value")
    add("--patience", type=int, help="early-stopping patience in epochs (default 20)")
    add("--seed", type=int, help="seed for the split, the initial weights and the batches (default 0)")
    add("--baselines", type=_baselines, help="linear,forest (default) or none")
    add("--no-mlflow", dest="mlflow", action="store_const", const=False, help="do not log to MLflow")
    add("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or MLflow's sqlite:///mlflow.db)")
    add("--experiment", help="MLflow experiment name (default glassloop)")
    _add_stream_flags(parser)
    return parser


# Streaming (glassloop.tabular.streaming): flags only, never in FitConfig/--config, so config files stay as they were.
STREAM_FLAGS = ("stream", "stream_threshold_mb")


def _add_stream_flags(parser: ArgumentParser) -> None:
    parser.add_argument("--stream", action="store_true", default=False,
                        help="read a Parquet file row group by row group (flat memory), whatever its size")
    parser.add_argument("--stream-threshold-mb", type=float, default=None,
                        help="stream Parquet files bigger than this many MB (default 512)")


# ----------------------------------------------------------------------------------------------- fit
def fit_main(argv: list[str]) -> int:
    """`glassloop fit`: validate everything, then create --out, train, compare, report."""
    args = fit_parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k != "config" and k not in STREAM_FLAGS}
    from glassloop.tabular.data import build_config, read_config_file

    file_values = read_config_file(args.config) if args.config else {}
    config = build_config(file_values, flags, source=f"config file {args.config!r}")
    for key, flag in (("data", "DATA"), ("target", "--target COL"), ("out", "--out DIR")):
        if getattr(config, key) is None:
            raise ConfigError(f"no {key} given; expected {flag} on the command line or {key} = ... in --config; add it")
    out = Path(config.out)
    _check_new_run_dir(out)
    data_path = Path(config.data).resolve()
    from glassloop.tabular.streaming import should_stream

    if should_stream(data_path, args.stream, args.stream_threshold_mb):  # big Parquet: glassloop.tabular.streaming
        from glassloop.tabular.streaming import fit_streamed

        return fit_streamed(data_path, config, out, {"forced": args.stream,
                                                     "threshold_mb": args.stream_threshold_mb})
    prepared = _prepare(data_path, config)
    check_model_size(prepared.transform.n_inputs, list(config.hidden), prepared.transform.n_outputs)
    tracking_uri = _tracking_uri(config) if config.mlflow else None
    _check_core(config)

    record = {
        "config_version": CONFIG_VERSION,
        "data": str(data_path),
        "data_sha256": _sha256(data_path),
        "options": config.model_dump() | {"data": str(data_path), "out": str(out.resolve())},
        "transform": prepared.transform.to_dict(),
        "model": {"inputs": prepared.transform.n_inputs, "hidden": list(config.hidden), "dropout": config.dropout,
                  "outputs": prepared.transform.n_outputs,
                  "loss": "cross_entropy" if prepared.transform.task == "classification" else "mse"},
        "split": prepared.split,
        "mlflow": {"tracking_uri": tracking_uri, "experiment": config.experiment} if config.mlflow else None,
    }
    print(f"glassloop fit: {prepared.split['train_rows']} training / {prepared.split['val_rows']} validation rows "
          f"({_describe_split(prepared.split)}); task {prepared.transform.task} ({prepared.task_reason}); "
          f"{prepared.transform.n_inputs} inputs from {len(prepared.transform.features)} columns")
    if prepared.skipped:
        print(f"  skipped non-numeric columns: {', '.join(prepared.skipped)} (name them in --features to one-hot "
              "encode them)")
    return start_run(out, record, lambda: _train_and_report(out, record, prepared, resume=False))


def start_run(out: Path, record: dict[str, Any], train: Callable[[], int]) -> int:
    """Create --out, write config.json, train. Validation is over: only now does --out appear.

    Until the first latest.pt exists nothing is worth keeping, so any failure (bad input the core found, an
    OSError, an interruption) removes what this run created: the directories `mkdir` made, or the contents of the
    empty directory that was reused. An OSError becomes a one-line ConfigError.
    """
    created = _first_missing(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / "config.json", record)
    except OSError as error:
        _discard_run(out, created)
        raise ConfigError(f"cannot create the run directory --out {str(out)!r} ({os_reason(error)}); expected a "
                          "writable location with free space; choose another --out") from None
    try:
        code = train()
    except BaseException as error:
        started = (out / "latest.pt").exists()
        if not started:
            _discard_run(out, created)
        if isinstance(error, OSError):
            if started:
                raise ConfigError(f"writing the run directory {str(out)!r} failed ({os_reason(error)}); expected a "
                                  f"writable disk with free space; fix that, then 'glassloop resume {out}'") from None
            raise ConfigError(f"writing the run directory {str(out)!r} failed ({os_reason(error)}) before the first "
                              "epoch was saved, so nothing was kept; expected a writable disk with free space; fix "
                              "that or choose another --out") from None
        raise
    if code >= 128 and not (out / "latest.pt").exists():  # interrupted before the first checkpoint
        _discard_run(out, created)
    return code


def os_reason(error: OSError) -> str:
    """'No space left on device: /path' for a message (never a multi-line repr)."""
    reason = error.strerror or one_line(str(error)) or type(error).__name__
    return f"{reason}: {str(error.filename)[:100]}" if error.filename else reason


def _first_missing(out: Path) -> Path | None:
    """The topmost directory that `out.mkdir(parents=True)` would create (None when --out exists)."""
    path, missing = out.absolute(), None
    while not path.exists():
        missing = path
        if path.parent == path:
            break
        path = path.parent
    return missing


def _discard_run(out: Path, created: Path | None) -> None:
    """Remove what a failed start left: the directories it created, or the contents of a reused empty --out."""
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        return
    try:
        children = list(out.iterdir())
    except OSError:
        return
    for child in children:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _check_new_run_dir(out: Path) -> None:
    """--out must be new (or an empty directory) and creatable; an existing run is never touched."""
    try:
        if out.exists():
            if not out.is_dir():
                raise ConfigError(f"--out {str(out)!r} exists and is not a directory; expected a new directory; "
                                  "choose another --out")
            if any(out.iterdir()):
                raise ConfigError(f"--out {str(out)!r} already exists and is not empty; expected a new run "
                                  f"directory; choose another --out, or run 'glassloop resume {out}' to continue "
                                  "that run")
        ancestor = out.absolute().parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        writable = ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK)
    except OSError as error:  # e.g. a name too long for the file system
        raise ConfigError(f"--out {str(out)!r} cannot be used ({os_reason(error)}); expected a directory path; "
                          "choose another --out") from None
    if not writable:
        raise ConfigError(f"--out {str(out)!r} cannot be created ({str(ancestor)!r} is not a writable directory); "
                          "expected a writable location; choose another --out")


MAX_PARAMETERS = 200_000_000  # ~800 MB of float32 weights (x4 with Adam): far past any table's needs


def check_model_size(inputs: int, hidden: list[int], outputs: int, where: str = "--hidden") -> None:
    """Refuse a network too large to build (a typo such as --hidden 65536,65536) before anything is written."""
    widths = [inputs, *hidden, outputs]
    count = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))
    if count > MAX_PARAMETERS:
        raise ConfigError(f"{where} {','.join(map(str, hidden))} gives a network of {count:,} parameters for "
                          f"{inputs} inputs; expected at most {MAX_PARAMETERS:,}; choose smaller hidden layers")


def check_output_file(value: str, flag: str = "--out") -> Path:
    """An output file that can be written atomically, checked before any work: not empty, not a directory or a
    device, in an existing directory where a file can be created (probed, so /proc or a read-only mount is
    found now, not after the work)."""
    if not value.strip():
        raise ConfigError(f"{flag} is empty; expected a file path such as predictions.csv; fix {flag}")
    path = Path(value)
    try:
        if path.is_dir():
            raise ConfigError(f"{flag} {value!r} is a directory; expected a file path such as "
                              f"{str(path / 'out.csv')!r}; fix {flag}")
        if path.exists() and not path.is_file():
            raise ConfigError(f"{flag} {value!r} is not a regular file (a device, pipe or socket); expected a file "
                              f"path; fix {flag}" + (" (leave it out to write to standard output)"
                                                     if flag == "--out" else ""))
        if not path.absolute().parent.is_dir():
            raise ConfigError(f"{flag} {value!r}: directory {str(path.absolute().parent)!r} does not exist; expected "
                              f"a file in an existing directory; create it or fix {flag}")
        probe = path.with_name(f".{path.name}.probe-{os.getpid()}")
        with open(probe, "xb"):
            pass
        probe.unlink()
    except OSError as error:
        reason = error.strerror or one_line(str(error)) or type(error).__name__
        raise ConfigError(f"{flag} {value!r} cannot be written ({reason} when creating a file in "
                          f"{str(path.absolute().parent)[:100]!r}); expected a file path in a writable directory; "
                          f"fix {flag}") from None
    return path


def write_output_file(data: bytes, path: Path, flag: str = "--out") -> None:
    """Atomically (temporary file next to it, fsync, os.replace); an OSError is one line and leaves no file."""
    from glassloop.core.checkpoint import write_file

    try:
        write_file(data, path)
    except OSError as error:
        raise ConfigError(f"could not write {flag} {str(path)!r} ({os_reason(error)}); nothing was written; "
                          f"expected a writable disk with free space; free space or choose another {flag}") from None


def _prepare(data_path: Path, config: Any) -> Any:
    from glassloop.tabular.data import prepare, read_table

    frame = read_table(data_path)
    return prepare(frame, config.target, features=config.features, task=config.task, split=config.split,
                   time_column=config.time_column, val_fraction=config.val_fraction, seed=config.seed)


def _tracking_uri(config: Any) -> str:
    """The explicit --tracking-uri, else MLflow's own default (MLFLOW_TRACKING_URI, or sqlite:///mlflow.db here),
    resolved now and stored so that `resume` logs to the same store from any directory."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = config.tracking_uri or mlflow.get_tracking_uri()
    try:  # open the store now: a bad URI is bad input, found before --out exists
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as error:  # MLflow raises many types for unusable stores
        raise ConfigError(f"cannot use MLflow tracking URI {uri!r} ({type(error).__name__}: "
                          f"{one_line(str(error))[:160]}); expected e.g. sqlite:///mlflow.db or http://host:5000; "
                          "fix --tracking-uri or pass --no-mlflow") from None
    return uri


def _check_core(config: Any) -> None:
    import glassloop as gl

    def available(name: str) -> bool:
        try:  # MLflowLogger is imported lazily: a missing module surfaces as ImportError, not AttributeError
            getattr(gl, name)
        except (AttributeError, ImportError):
            return False
        return True

    missing = [name for name in ("fit", "EarlyStopping", "Checkpoint", "load_checkpoint") if not available(name)]
    if config.mlflow and not available("MLflowLogger"):
        missing.append("MLflowLogger")
    if missing:
        hint = "; pass --no-mlflow" if missing == ["MLflowLogger"] else "; update glassloop"
        raise ConfigError(f"this glassloop lacks {', '.join(missing)}; expected the full training core{hint}")


def _describe_split(split: dict[str, Any]) -> str:
    if split["method"] == "temporal":
        return f"temporal on {split['time_column']}: train until {split['train_until']}, validate from {split['val_from']}"
    return f"random, seed {split['seed']}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, value: Any) -> None:
    """Write atomically (temporary file, fsync, os.replace): a reader (or a crash) never sees half a file."""
    from glassloop.core.checkpoint import write_file

    write_file((json.dumps(value, indent=2, default=_json_default) + "\n").encode("utf-8"), path)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


# ----------------------------------------------------------------------------------------------- model
def build_model(inputs: int, hidden: list[int], dropout: float, outputs: int) -> Any:
    """inputs -> [Linear, ReLU, (Dropout)] per hidden size -> Linear(outputs). No hidden sizes: one Linear."""
    from torch import nn

    layers: list[nn.Module] = []
    width = inputs
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


def _model_from_record(record: dict[str, Any]) -> Any:
    spec = record["model"]
    return build_model(int(spec["inputs"]), [int(h) for h in spec["hidden"]], float(spec["dropout"]), int(spec["outputs"]))


def _outputs(model: Any, inputs: np.ndarray) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        result = model(torch.as_tensor(np.ascontiguousarray(inputs, dtype=np.float32)))
    if result.dim() == 2 and result.shape[1] > 1:
        result = torch.softmax(result, dim=1)
    return result.numpy().astype(np.float64)


def _network_metrics(model: Any, prepared: Any) -> dict[str, float]:
    """The network's validation metrics in the baselines' units (original target units, probabilities)."""
    from glassloop.tabular.data import classification_metrics, regression_metrics

    outputs = _outputs(model, prepared.val_x)
    if prepared.transform.task == "classification":
        return classification_metrics(prepared.val_y, outputs)
    return regression_metrics(prepared.val_y, prepared.transform.decode_predictions(outputs))


# ----------------------------------------------------------------------------------------------- training
def train_network(model: Any, train: Any, val: Any, out: Path, record: dict[str, Any], task: str,
                  resume: bool) -> tuple[Any, Any, int | None]:
    """gl.fit with the run's options and callbacks, shared by the in-memory and streamed fit.

    Returns (history, logger, exit code): the code is set when the caller must stop there (an interrupted run gets
    no summary; under torchrun only rank 0 writes one). Otherwise the model holds best.pt's weights, exactly what
    `predict` will use.
    """
    import glassloop as gl

    options = record["options"]
    callbacks, logger = run_callbacks(out, record, resume)
    history = gl.fit(
        model, train, val,
        loss=record["model"].get("loss", "cross_entropy" if task == "classification" else "mse"),  # logits vs
        # class indices for cross_entropy; mse on the standardised target
        optimizer=options["optimizer"], lr=options["lr"], weight_decay=options["weight_decay"],
        momentum=options["momentum"], epochs=options["epochs"], batch_size=options["batch_size"],
        scheduler=options["scheduler"], clip_grad_norm=options["clip"], callbacks=callbacks, seed=options["seed"],
        metrics=["accuracy"] if task == "classification" else None,
    )
    if history.signal is not None:  # interrupted: latest.pt holds the position, a partial run gets no summary
        print(f"glassloop: run interrupted; continue it with: glassloop resume {out}", file=sys.stderr)
        return history, logger, 128 + history.signal
    if not is_main_process():
        return history, logger, 0  # under torchrun only rank 0 evaluates, compares and writes the summary
    best = out / "best.pt"
    if best.exists():
        model.load_state_dict(gl.load_checkpoint(best)["model"])
    return history, logger, None


def run_callbacks(out: Path, record: dict[str, Any], resume: bool) -> tuple[list[Any], Any]:
    """Early stopping, checkpoints in the run directory and (unless --no-mlflow) the MLflow logger."""
    import glassloop as gl

    options = record["options"]
    callbacks: list[Any] = [gl.EarlyStopping(patience=options["patience"]), gl.Checkpoint(out, resume=resume)]
    logger = None
    if record["mlflow"] is not None:
        logger = gl.MLflowLogger(experiment=record["mlflow"]["experiment"],
                                 tracking_uri=record["mlflow"]["tracking_uri"],
                                 run_name=out.resolve().name + ("-resumed" if resume else ""))
        callbacks.append(logger)
    return callbacks, logger


def network_summary(network: dict[str, float], spec: dict[str, Any], history: Any, task: str) -> dict[str, Any]:
    """The network's part of summary.json (shared with the streamed path)."""
    return {
        **network,
        "model": f"MLP {'-'.join(str(v) for v in [spec['inputs'], *spec['hidden'], spec['outputs']])}",
        "best_epoch": history.best_epoch,
        "epochs_run": len(history.records),
        "stop_reason": history.stop_reason,
        "best_val_loss": history.best_val_loss,
        "val_loss_note": "val_loss in history.csv is on the standardised target" if task == "regression" else None,
    }


def run_paths(out: Path, curves: Path | None) -> dict[str, str]:
    paths = {name: str(out.resolve() / name) for name in ("config.json", "best.pt", "latest.pt", "history.csv")}
    return paths | ({"curves.png": str(curves.resolve())} if curves else {})


def _train_and_report(out: Path, record: dict[str, Any], prepared: Any, resume: bool) -> int:
    import torch

    from glassloop.tabular.data import run_baselines, to_tensors

    options = record["options"]
    task = prepared.transform.task
    torch.manual_seed(options["seed"])  # the initial weights, before gl.fit seeds the batches
    model = _model_from_record(record)
    train = to_tensors(prepared.train_x, prepared.train_y, prepared.transform)
    val = to_tensors(prepared.val_x, prepared.val_y, prepared.transform)
    history, logger, code = train_network(model, train, val, out, record, task, resume)
    if code is not None:
        return code
    network = _network_metrics(model, prepared)
    baselines = run_baselines((prepared.train_x, prepared.train_y), (prepared.val_x, prepared.val_y), task,
                              names=options["baselines"], seed=options["seed"],
                              n_classes=prepared.transform.n_outputs if task == "classification" else None)
    verdict = compare(network, baselines, task)
    curves = out / "curves.png" if (out / "curves.png").exists() else None  # gl.Checkpoint draws it when it can
    mlflow_info = None
    if logger is not None:
        try:
            mlflow_info = _log_to_mlflow(record["mlflow"], getattr(logger, "run_id", None), network, baselines,
                                         record)
        except Exception as error:  # the run is trained and saved; a tracking hiccup must not lose the summary
            print(f"glassloop fit: warning: could not log the baselines to MLflow ({type(error).__name__}: "
                  f"{one_line(str(error))[:200]})", file=sys.stderr)
            mlflow_info = {"tracking_uri": record["mlflow"]["tracking_uri"], "run_id": getattr(logger, "run_id", None),
                           "error": one_line(str(error))[:500]}
    summary = {
        "task": task,
        "target": prepared.transform.target,
        "data": record["data"],
        "split": prepared.split,
        "network": network_summary(network, record["model"], history, task),
        "baselines": baselines,
        "verdict": verdict,
        "mlflow": mlflow_info,
        "paths": run_paths(out, curves),
    }
    _write_json(out / "summary.json", summary)
    print(comparison_table(network, baselines, task, history))
    print(verdict["text"])
    print(f"run saved in {out}/ (summary.json, config.json, best.pt); predict with: glassloop predict {out} NEW.csv")
    return 0 if all(math.isfinite(v) for v in network.values()) else 1


def compare(network: dict[str, float], baselines: dict[str, dict[str, Any]], task: str) -> dict[str, Any]:
    """Did the network beat the best baseline on the primary metric, and by how much (absolute and relative)."""
    from glassloop.tabular.data import PRIMARY_METRIC

    metric, direction = PRIMARY_METRIC[task]
    if not baselines:
        return {"metric": metric, "network_better": None,
                "text": "verdict: no baselines (--baselines none), so there is nothing to compare the network with"}
    pick = min if direction == "lower" else max
    best_name = pick(baselines, key=lambda name: baselines[name][metric])
    ours, theirs = network[metric], baselines[best_name][metric]
    gain = (theirs - ours) if direction == "lower" else (ours - theirs)  # > 0: the network is better
    if theirs != 0:
        relative = gain / abs(theirs)
    else:  # a perfect baseline (e.g. a straight line through lesson 002's houses): no ratio, only the sign
        relative = math.copysign(math.inf, gain) if gain != 0 else 0.0
    better = bool(gain > 0)
    shown = f"{metric} {ours:.4g} vs {theirs:.4g}"
    # a near-perfect baseline makes the ratio meaningless (e.g. 1e15 %): give the absolute gap instead
    size = f"{abs(relative):.1%}" if math.isfinite(relative) and abs(relative) < 100 else f"by {abs(gain):.4g}"
    if abs(relative) < 0.02:
        text = (f"verdict: no real difference from the best baseline ({best_name}) on {shown} "
                f"({relative:+.1%}); complexity without improvement is a cost: prefer {best_name}")
    elif better:
        text = f"verdict: the network beat the best baseline ({best_name}) on {shown}, {size} better"
    else:
        text = (f"verdict: the network did NOT beat the best baseline ({best_name}) on {shown}, "
                f"{size} worse; prefer {best_name} for this data")
    return {"metric": metric, "direction": f"{direction} is better", "network": ours, "best_baseline": best_name,
            "best_baseline_value": theirs, "network_better": better, "margin": gain,
            "relative_margin": relative if math.isfinite(relative) else None, "text": text}


def comparison_table(network: dict[str, float], baselines: dict[str, dict[str, Any]], task: str, history: Any) -> str:
    metrics = list(network)
    rows = [("network (MLP)", network)] + [(f"{name} ({result['model']})", result) for name, result in baselines.items()]
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"{'model':<{width}}" + "".join(f"{m:>14}" for m in metrics)]
    lines += [f"{name:<{width}}" + "".join(f"{values[m]:>14.4f}" for m in metrics) for name, values in rows]
    best_epoch = history.best_epoch + 1 if history.best_epoch is not None else "-"
    lines.append(f"(network: best epoch {best_epoch} of {len(history.records)} run; stop: {history.stop_reason})")
    return "\n".join(lines)


def _log_to_mlflow(settings: dict[str, Any], parent_run_id: str | None, network: dict[str, float],
                   baselines: dict[str, dict[str, Any]], record: dict[str, Any]) -> dict[str, Any]:
    """Final comparable metrics on the network's run; one sibling run per baseline tagged with the parent run id
    (and mlflow.parentRunId, so the UI nests them). The MlflowClient keeps the global active run untouched."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings["tracking_uri"])
    experiment = client.get_experiment_by_name(settings["experiment"])
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(settings["experiment"])
    if parent_run_id is not None:
        for key, value in network.items():
            client.log_metric(parent_run_id, key, value)
        client.set_tag(parent_run_id, "glassloop.role", "network")
    baseline_runs: dict[str, str] = {}
    split = record["split"]
    for name, result in baselines.items():
        tags = {"glassloop.role": "baseline", "glassloop.baseline": name}
        if parent_run_id is not None:
            tags |= {"glassloop.parent_run_id": parent_run_id, "mlflow.parentRunId": parent_run_id}
        run = client.create_run(experiment_id, run_name=f"baseline-{name}", tags=tags)
        run_id = run.info.run_id
        client.log_param(run_id, "model", result["model"])
        client.log_param(run_id, "split", split["method"])
        client.log_param(run_id, "train_rows", split["train_rows"])
        client.log_param(run_id, "val_rows", split["val_rows"])
        for key, value in result.items():
            if key != "model":
                client.log_metric(run_id, key, value)
        client.set_terminated(run_id)
        baseline_runs[name] = run_id
    return {"tracking_uri": settings["tracking_uri"], "experiment": settings["experiment"],
            "experiment_id": experiment_id, "run_id": parent_run_id, "baseline_run_ids": baseline_runs}


# ----------------------------------------------------------------------------------------------- resume
def _read_run(directory: str) -> tuple[Path, dict[str, Any]]:
    """config.json of a run directory, checked whole: a hand-edited or corrupt file is one DataError line."""
    run_dir = Path(directory)
    config_path = run_dir / "config.json"
    if not directory.strip() or not config_path.is_file():
        raise ConfigError(f"{str(directory)!r} has no config.json; expected a run directory made by 'glassloop fit'; "
                          "check the path")
    try:
        record = json.loads(config_path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise DataError(f"{str(config_path)!r} is not valid JSON ({one_line(str(error))[:120]}); expected the file "
                        "'glassloop fit' wrote; restore it or start a new run with 'glassloop fit'") from None
    except OSError as error:
        raise DataError(f"cannot read {str(config_path)!r} ({os_reason(error)}); expected a readable file; fix its "
                        "permissions or start a new run with 'glassloop fit'") from None
    if not isinstance(record, dict) or record.get("config_version") != CONFIG_VERSION:
        found = record.get("config_version") if isinstance(record, dict) else None
        raise DataError(f"{str(config_path)!r} has config_version {found!r}; expected {CONFIG_VERSION}; "
                        "re-run 'glassloop fit' with this version")
    _check_record(record, config_path)
    return run_dir, record


def _check_record(record: dict[str, Any], config_path: Path) -> None:
    """Every key resume and predict read, with its type and its agreement with the others (a model that does
    not match the transform would fail deep inside torch)."""
    from pydantic import ValidationError

    from glassloop.tabular.data import FitConfig, TableTransform, config_error

    def bad(problem: str) -> DataError:
        return DataError(f"{str(config_path)!r} {problem}; expected the config.json 'glassloop fit' wrote; restore "
                         "it (or undo the edit), or start a new run with 'glassloop fit'")

    def shown(value: Any) -> str:
        return one_line(repr(value))[:60]

    for key, kind in (("data", str), ("data_sha256", str), ("options", dict), ("transform", dict), ("model", dict),
                      ("split", dict)):
        if key not in record:
            raise bad(f"lacks the key {key!r}")
        if not isinstance(record[key], kind):
            raise bad(f"has {key} = {shown(record[key])}, not a {'string' if kind is str else 'JSON object'}")
    try:
        options = FitConfig.model_validate(record["options"])
    except ValidationError as error:
        raise bad(f"has a bad option: {config_error(error, set(), 'options')}") from None
    if options.target is None:
        raise bad("has no options.target")
    mlflow = record.get("mlflow")
    if mlflow is not None and not (isinstance(mlflow, dict) and isinstance(mlflow.get("tracking_uri"), (str, type(None)))
                                   and isinstance(mlflow.get("experiment"), str) and mlflow["experiment"]):
        raise bad(f"has mlflow = {shown(mlflow)}; expected null or {{\"tracking_uri\": ..., \"experiment\": ...}}")
    if "streaming" in record and not isinstance(record["streaming"], dict):
        raise bad(f"has streaming = {shown(record['streaming'])}, not a JSON object")
    try:
        transform = TableTransform.from_dict(record["transform"])
        n_inputs, n_outputs = transform.n_inputs, transform.n_outputs
        consistent = (transform.task in ("regression", "classification") and isinstance(transform.target, str)
                      and all(isinstance(f, str) for f in transform.features)
                      and len(transform.scaler.mean) == len(transform.scaler.std) == n_inputs
                      and (transform.task == "regression" or n_outputs >= 2)
                      and (transform.task == "classification" or transform.target_scaler is None
                           or len(transform.target_scaler.mean) == 1))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise bad(f"has a malformed transform ({type(error).__name__}: {one_line(str(error))[:80]})") from None
    if not consistent:
        raise bad("has an inconsistent transform (task, features, scaler or classes do not agree)")
    model = record["model"]
    sizes = [model.get("inputs"), *(model.get("hidden") if isinstance(model.get("hidden"), list) else [None]),
             model.get("outputs")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes):
        raise bad(f"has model sizes {shown({k: model.get(k) for k in ('inputs', 'hidden', 'outputs')})}; "
                  "expected positive integers")
    dropout = model.get("dropout")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise bad(f"has model dropout {shown(dropout)}; expected a number in [0, 1)")
    if model.get("loss", "mse") not in ("mse", "cross_entropy"):
        raise bad(f"has model loss {shown(model.get('loss'))}; expected 'mse' or 'cross_entropy'")
    if (model["inputs"], model["outputs"]) != (n_inputs, n_outputs):
        raise bad(f"has a model of {model['inputs']} inputs and {model['outputs']} outputs but a transform of "
                  f"{n_inputs} and {n_outputs}")
    try:
        check_model_size(model["inputs"], list(model["hidden"]), model["outputs"], where="model.hidden")
    except ConfigError as error:
        raise bad(f"describes an unusable model: {error}") from None


def _load_weights(model: Any, path: Path, kind: str | None = None) -> dict[str, Any]:
    """Load a checkpoint's weights into the model config.json describes; a foreign or mismatched file (e.g. a
    best.pt copied from another run) is one CheckpointError line, not torch's multi-line report."""
    import glassloop as gl

    checkpoint = gl.load_checkpoint(path, kind=kind)
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


def resume_main(argv: list[str]) -> int:
    """`glassloop resume DIR`: rebuild data, transform and model from config.json, continue from latest.pt."""
    parser = ArgumentParser(prog="glassloop resume", allow_abbrev=False,
                            description="Continue an interrupted 'glassloop fit' run from its latest.pt.")
    parser.add_argument("run_dir", help="the run directory (holds config.json and latest.pt)")
    parser.add_argument("--no-mlflow", dest="mlflow", action="store_false", help="do not log to MLflow")
    args = parser.parse_args(argv)
    run_dir, record = _read_run(args.run_dir)
    latest = run_dir / "latest.pt"
    if not latest.is_file():
        raise ConfigError(f"{str(run_dir)!r} has no latest.pt; expected a run that trained at least one epoch; "
                          "start it again with 'glassloop fit'")
    checkpoint = _load_weights(_model_from_record(record), latest, kind="latest")  # foreign/corrupt: one line now
    if checkpoint.get("finished") and (run_dir / "summary.json").is_file():
        history = checkpoint.get("history") if isinstance(checkpoint.get("history"), dict) else {}
        print(f"glassloop resume: run in {run_dir} already finished ({history.get('stop_reason') or 'finished'}); "
              f"nothing to resume. Its verdict is in {run_dir / 'summary.json'}; to train again, start a new run "
              "with 'glassloop fit'")
        return 0
    data_path = Path(record["data"])
    if data_path.is_file() and _sha256(data_path) != record["data_sha256"]:
        raise DataError(f"data file {str(data_path)!r} changed since the run started (sha256 differs); expected the "
                        "same table; restore it, or start a new run with 'glassloop fit'")
    try:
        if record.get("streaming"):  # a streamed run re-streams its data (glassloop.tabular.streaming)
            from glassloop.tabular.streaming import resume_streamed

            return resume_streamed(run_dir, record, args.mlflow)
        from glassloop.tabular.data import FitConfig, TableTransform

        config = FitConfig.model_validate(record["options"])
        if not args.mlflow:
            record["mlflow"] = None
        prepared = _prepare(data_path, config)
        if prepared.transform.to_dict() != TableTransform.from_dict(record["transform"]).to_dict():
            raise DataError(f"the table at {str(data_path)!r} no longer gives the stored transform; expected the same "
                            "data; start a new run with 'glassloop fit'")
        prepared.transform = TableTransform.from_dict(record["transform"])
        _check_core(config.model_copy(update={"mlflow": record["mlflow"] is not None}))
        return _train_and_report(run_dir, record, prepared, resume=True)
    except OSError as error:
        raise ConfigError(f"writing the run directory {str(run_dir)!r} failed ({os_reason(error)}); expected a "
                          f"writable disk with free space; fix that, then 'glassloop resume {run_dir}' again") from None


# ----------------------------------------------------------------------------------------------- predict
RUN_FILES = ("config.json", "best.pt", "latest.pt", "summary.json", "history.csv", "curves.png")


def predict_main(argv: list[str]) -> int:
    """`glassloop predict DIR NEW.csv [--out preds.csv]`: best.pt + the stored transform -> predictions."""
    parser = ArgumentParser(prog="glassloop predict", allow_abbrev=False,
                            description="Predict a table with a run's best.pt and its stored transform.")
    parser.add_argument("run_dir", help="a 'glassloop fit' run directory")
    parser.add_argument("data", help="the table to predict (.csv or .parquet), with the training feature columns")
    parser.add_argument("--out", help="CSV to write (default: standard output)")
    _add_stream_flags(parser)
    args = parser.parse_args(argv)
    run_dir, record = _read_run(args.run_dir)
    best = run_dir / "best.pt"
    if not best.is_file():
        raise ConfigError(f"{str(run_dir)!r} has no best.pt; expected a run that finished at least one epoch; "
                          "train it with 'glassloop fit' or 'glassloop resume'")
    target = check_output_file(args.out) if args.out is not None else None  # before any work
    if target is not None and target.exists():
        for name, path in [(f"the run's {n}", run_dir / n) for n in RUN_FILES] + [("the table to predict",
                                                                                  Path(args.data))]:
            if path.exists() and os.path.samefile(path, target):
                raise ConfigError(f"--out {args.out!r} is {name}; writing predictions there would destroy it; "
                                  "expected a new CSV path; choose another --out")
    from glassloop.tabular.data import TableTransform, read_table
    from glassloop.tabular.streaming import should_stream

    model = _model_from_record(record)
    _load_weights(model, best)
    if should_stream(Path(args.data), args.stream, args.stream_threshold_mb):  # big Parquet: CSV rows as they come
        from glassloop.tabular.streaming import predict_streamed

        return predict_streamed(record, model, Path(args.data), args.out)
    transform = TableTransform.from_dict(record["transform"])
    frame = read_table(args.data)
    inputs = transform.transform(frame, source=repr(args.data))
    outputs = _outputs(model, inputs)
    result = frame.copy()
    result[f"predicted_{transform.target}"] = transform.decode_predictions(outputs)
    if transform.task == "classification":
        for index, label in enumerate(transform.classes):
            result[f"probability_{label}"] = outputs[:, index]
    if target is None:
        try:
            result.to_csv(sys.stdout, index=False)
            sys.stdout.flush()
        except BrokenPipeError:  # `glassloop predict ... | head`: the reader left, which is not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        write_output_file(result.to_csv(index=False).encode("utf-8"), target)
        print(f"wrote {len(result)} predictions to {args.out}")
    return 0
