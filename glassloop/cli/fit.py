"""`glassloop fit DATA --target COL --out DIR [options | --config FILE.toml]`: train an MLP on a table, with baselines.

The data flags (`add_data_flags`, `table_from_flags`) are shared with every command that trains on a table
(`glassloop sweep DATA`), so they mean the same everywhere.
"""

from __future__ import annotations

import argparse
from typing import Any

from glassloop.cli import ArgumentParser

# Flags only, never in FitConfig/--config, so config files stay as they were.
STREAM_FLAGS = ("stream", "stream_threshold_mb")
DATA_FLAGS = ("features", "split", "time_column", "val_fraction", "task", "impute")


def csv_list(text: str) -> list[str]:
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
    return [] if text.strip().lower() == "none" else csv_list(text)


def add_data_flags(parser: argparse.ArgumentParser, target: bool = True) -> None:
    """--target, --features, --split, --time-column, --val-fraction, --task, --impute (as `glassloop fit`)."""
    add = parser.add_argument
    if target:
        add("--target", help="column to predict")
    add("--features", type=csv_list, help="input columns (default: every numeric column but the target)")
    add("--split", choices=["random", "temporal"], help="random (seeded) or temporal (default when --time-column)")
    add("--time-column", help="date/time column: validation rows are strictly later than training rows")
    add("--val-fraction", type=float, help="share of rows for validation (default 0.2)")
    add("--task", choices=["regression", "classification"], help="default: inferred from the target")
    add("--impute", choices=["median", "mean", "most_frequent", "constant"],
        help="fill missing feature values with the training rows' statistic (default: refuse them)")


def table_from_flags(data: str, args: argparse.Namespace, seed: int = 0) -> Any:
    """The table behind DATA and the data flags as `glassloop.tabular.sources.TableTensors` (train/val tensors
    scaled on the training rows, the transform, the loss name, the split)."""
    from glassloop.tabular.data import build_config
    from glassloop.tabular.sources import table_tensors

    flags = {key: getattr(args, key, None) for key in DATA_FLAGS} | {"target": args.target, "seed": seed,
                                                                      "data": data}
    return table_tensors(data, build_config({}, flags, source="flags"))


def fit_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="glassloop fit", allow_abbrev=False,
                            description="Train an MLP on a CSV/Parquet table and compare it with scikit-learn baselines.")
    add = parser.add_argument
    add("data", nargs="?", help="the table (.csv or .parquet); may also come from --config")
    add("--out", help="run directory to create (must not exist, or be empty)")
    add("--config", help="TOML file with any of these options (flags override it)")
    add_data_flags(parser)
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
    add("--accumulate", type=int, help="micro-batches per optimizer step (gradient accumulation; default 1)")
    add("--precision", choices=["32", "bf16", "16-mixed"], help="mixed precision (default 32)")
    add("--check-finite-every", type=int, metavar="N", help="read the loss and gradient norm every Nth step, the "
        "NaN/Inf guard kept on the device in between (for accelerators; default 1)")
    add("--tensorboard", metavar="DIR", help="also write TensorBoard event files to DIR")
    add("--patience", type=int, help="early-stopping patience in epochs (default 20)")
    add("--seed", type=int, help="seed for the split, the initial weights and the batches (default 0)")
    add("--class-weight", choices=["balanced", "none"], help="classification: weight the loss by the training "
        "rows' class counts (balanced) or not (default none)")
    add("--baselines", type=_baselines, help="linear,forest (default) or none")
    add("--no-mlflow", dest="mlflow", action="store_const", const=False, help="do not log to MLflow")
    add("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or MLflow's sqlite:///mlflow.db)")
    add("--experiment", help="MLflow experiment name (default glassloop)")
    add_stream_flags(parser)
    return parser


def add_stream_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stream", action="store_true", default=False,
                        help="read a Parquet file row group by row group (flat memory), whatever its size")
    parser.add_argument("--stream-threshold-mb", type=float, default=None,
                        help="stream Parquet files bigger than this many MB (default 512)")


def main(argv: list[str]) -> int:
    """Validate every option, then the table (header first), and only then create --out and train."""
    args = fit_parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k != "config" and k not in STREAM_FLAGS}
    from glassloop.tabular.data import build_config, read_config_file
    from glassloop.tabular.runs import fit_table

    file_values = read_config_file(args.config) if args.config else {}
    config = build_config(file_values, flags, source=f"config file {args.config!r}")
    return fit_table(config, args.stream, args.stream_threshold_mb)
