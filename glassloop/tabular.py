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
from pathlib import Path
from typing import Any

import numpy as np

from glassloop.cli import ArgumentParser
from glassloop.distributed import is_main_process
from glassloop.errors import ConfigError, DataError, GlassloopError, one_line

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


# Streaming (glassloop.streaming): flags only, never in FitConfig/--config, so config files stay as they were.
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
    from glassloop.data import build_config, read_config_file

    file_values = read_config_file(args.config) if args.config else {}
    config = build_config(file_values, flags, source=f"config file {args.config!r}")
    for key, flag in (("data", "DATA"), ("target", "--target COL"), ("out", "--out DIR")):
        if getattr(config, key) is None:
            raise ConfigError(f"no {key} given; expected {flag} on the command line or {key} = ... in --config; add it")
    out = Path(config.out)
    _check_new_run_dir(out)
    data_path = Path(config.data).resolve()
    from glassloop.streaming import should_stream

    if should_stream(data_path, args.stream, args.stream_threshold_mb):  # big Parquet: glassloop.streaming
        from glassloop.streaming import fit_streamed

        return fit_streamed(data_path, config, out, {"forced": args.stream,
                                                     "threshold_mb": args.stream_threshold_mb})
    prepared = _prepare(data_path, config)
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
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)  # validation is over: only now does --out appear
    try:
        _write_json(out / "config.json", record)
        return _train_and_report(out, record, prepared, resume=False)
    except GlassloopError:
        # A problem the core found before any checkpoint exists is still bad input: leave nothing behind.
        if not (out / "latest.pt").exists():
            if created:
                shutil.rmtree(out, ignore_errors=True)
            else:  # it was an empty directory: make it empty again
                for child in out.iterdir():
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        raise


def _check_new_run_dir(out: Path) -> None:
    """--out must be new (or an empty directory) and creatable; an existing run is never touched."""
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"--out {str(out)!r} exists and is a file; expected a new directory; choose another --out")
        if any(out.iterdir()):
            raise ConfigError(f"--out {str(out)!r} already exists and is not empty; expected a new run directory; "
                              f"choose another --out, or run 'glassloop resume {out}' to continue that run")
    ancestor = out.resolve().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {str(out)!r} cannot be created ({str(ancestor)!r} is not a writable directory); "
                          "expected a writable location; choose another --out")


def _prepare(data_path: Path, config: Any) -> Any:
    from glassloop.data import prepare, read_table

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
    """Write atomically: a reader (or a crash) never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(value, indent=2, default=_json_default) + "\n")
    os.replace(temporary, path)


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
    from glassloop.data import classification_metrics, regression_metrics

    outputs = _outputs(model, prepared.val_x)
    if prepared.transform.task == "classification":
        return classification_metrics(prepared.val_y, outputs)
    return regression_metrics(prepared.val_y, prepared.transform.decode_predictions(outputs))


# ----------------------------------------------------------------------------------------------- training
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

    import glassloop as gl
    from glassloop.data import run_baselines, to_tensors

    options = record["options"]
    task = prepared.transform.task
    torch.manual_seed(options["seed"])  # the initial weights, before gl.fit seeds the batches
    model = _model_from_record(record)
    train = to_tensors(prepared.train_x, prepared.train_y, prepared.transform)
    val = to_tensors(prepared.val_x, prepared.val_y, prepared.transform)
    callbacks: list[Any] = [gl.EarlyStopping(patience=options["patience"]), gl.Checkpoint(out, resume=resume)]
    logger = None
    if record["mlflow"] is not None:
        logger = gl.MLflowLogger(experiment=record["mlflow"]["experiment"],
                                 tracking_uri=record["mlflow"]["tracking_uri"],
                                 run_name=out.resolve().name + ("-resumed" if resume else ""))
        callbacks.append(logger)
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
        return 128 + history.signal
    if not is_main_process():
        return 0  # under torchrun only rank 0 evaluates, compares and writes the summary
    best = out / "best.pt"
    if best.exists():  # evaluate exactly the weights `predict` will use
        model.load_state_dict(gl.load_checkpoint(best)["model"])
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
    from glassloop.data import PRIMARY_METRIC

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
    size = f"{abs(relative):.1%}" if math.isfinite(relative) else f"by {abs(gain):.4g}"
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
    run_dir = Path(directory)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"{str(run_dir)!r} has no config.json; expected a run directory made by 'glassloop fit'; "
                          "check the path")
    try:
        record = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{str(config_path)!r} is not valid JSON ({error}); expected the file 'glassloop fit' "
                          "wrote; restore it or start a new run") from None
    if not isinstance(record, dict) or record.get("config_version") != CONFIG_VERSION:
        found = record.get("config_version") if isinstance(record, dict) else None
        raise ConfigError(f"{str(config_path)!r} has config_version {found!r}; expected {CONFIG_VERSION}; "
                          "re-run 'glassloop fit' with this version")
    return run_dir, record


def resume_main(argv: list[str]) -> int:
    """`glassloop resume DIR`: rebuild data, transform and model from config.json, continue from latest.pt."""
    parser = ArgumentParser(prog="glassloop resume", allow_abbrev=False,
                            description="Continue an interrupted 'glassloop fit' run from its latest.pt.")
    parser.add_argument("run_dir", help="the run directory (holds config.json and latest.pt)")
    parser.add_argument("--no-mlflow", dest="mlflow", action="store_false", help="do not log to MLflow")
    args = parser.parse_args(argv)
    run_dir, record = _read_run(args.run_dir)
    if not (run_dir / "latest.pt").is_file():
        raise ConfigError(f"{str(run_dir)!r} has no latest.pt; expected a run that trained at least one epoch; "
                          "start it again with 'glassloop fit'")
    data_path = Path(record["data"])
    if data_path.is_file() and _sha256(data_path) != record["data_sha256"]:
        raise DataError(f"data file {str(data_path)!r} changed since the run started (sha256 differs); expected the "
                        "same table; restore it, or start a new run with 'glassloop fit'")
    if record.get("streaming"):  # a streamed run re-streams its data (glassloop.streaming)
        from glassloop.streaming import resume_streamed

        return resume_streamed(run_dir, record, args.mlflow)
    from glassloop.data import FitConfig, TableTransform

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


# ----------------------------------------------------------------------------------------------- predict
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
    if args.out is not None:
        target = Path(args.out)
        if target.is_dir() or not target.resolve().parent.is_dir():
            raise ConfigError(f"--out {args.out!r} is not a writable file path; expected a CSV path in an existing "
                              "directory; fix --out")
    import glassloop as gl
    from glassloop.data import TableTransform, read_table
    from glassloop.streaming import should_stream

    if should_stream(Path(args.data), args.stream, args.stream_threshold_mb):  # big Parquet: CSV rows as they come
        from glassloop.streaming import predict_streamed

        model = _model_from_record(record)
        model.load_state_dict(gl.load_checkpoint(best)["model"])
        return predict_streamed(record, model, Path(args.data), args.out)
    transform = TableTransform.from_dict(record["transform"])
    frame = read_table(args.data)
    inputs = transform.transform(frame, source=repr(args.data))
    model = _model_from_record(record)
    model.load_state_dict(gl.load_checkpoint(best)["model"])
    outputs = _outputs(model, inputs)
    result = frame.copy()
    result[f"predicted_{transform.target}"] = transform.decode_predictions(outputs)
    if transform.task == "classification":
        for index, label in enumerate(transform.classes):
            result[f"probability_{label}"] = outputs[:, index]
    if args.out is None:
        try:
            result.to_csv(sys.stdout, index=False)
            sys.stdout.flush()
        except BrokenPipeError:  # `glassloop predict ... | head`: the reader left, which is not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        result.to_csv(args.out, index=False)
        print(f"wrote {len(result)} predictions to {args.out}")
    return 0
