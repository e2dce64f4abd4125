"""`glassloop sweep`: many configurations of one model trained at once (see glassloop.sweeps)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import torch
from torch import nn

from glassloop.core.building import SCHEDULERS
from glassloop.core.options import MAX_BATCH_SIZE, MAX_CONFIGURATIONS, MAX_EPOCHS, MAX_PARAMETERS, MAX_SEED
from glassloop.core.workloads import mlp, mlp_parameters, ssa
from glassloop.errors import ConfigError
from glassloop.sweeps.api import sweep
from glassloop.sweeps.tracking import log_to_mlflow

MLFLOW_SCHEMES = ("file", "sqlite", "http", "https", "databricks", "databricks-uc", "postgresql", "mysql", "mssql")


def workload(name: str) -> tuple[Any, Any, Callable[[], nn.Module], dict[str, Any]]:
    """(train, val, build_model, defaults) of a built-in workload."""
    if name == "ssa":
        train, val = ssa()
        return train, val, lambda: mlp((4, 64, 64, 1)), {"batch_size": 64, "epochs": 30}
    if name == "linreg":
        from glassloop.teach.three_ways import X, Y

        inputs, targets = torch.tensor(X).unsqueeze(1), torch.tensor(Y).unsqueeze(1)
        return (inputs, targets), None, lambda: nn.Linear(1, 1), {"batch_size": None, "epochs": 60}
    raise ConfigError(f"unknown workload {name!r}; expected ssa or linreg")


def table_data(args: Any, hidden: list[int]) -> tuple[Any, Any, Callable[[], nn.Module], str, list[int]]:
    """DATA and the data flags exactly as `glassloop fit` reads them (glassloop/cli/fit.py's table_from_flags):
    validated, split, scaled on the training rows only. Returns train, val, build_model, loss, layer sizes."""
    if args.target is None:
        raise ConfigError(f"{args.data} given without --target COL; name the column to predict")
    from glassloop.cli.fit import table_from_flags

    table = table_from_flags(args.data, args)
    sizes = [table.transform.n_inputs, *hidden, table.transform.n_outputs]
    return table.train, table.val, lambda: mlp(sizes), table.loss, sizes


def number_list(text: str, name: str, kind: type = float, unique: bool = True) -> list[Any]:
    """A comma-separated flag value: every item a finite number, none empty, none repeated (with `unique`)."""
    example = "1e-3,3e-3" if kind is float else "0,1,2"
    items = [part.strip() for part in text.split(",")]
    if not text.strip():
        raise ConfigError(f"--{name} is empty; expected at least one value, e.g. --{name} {example}")
    if any(not item for item in items):
        raise ConfigError(f"--{name} {text!r} has an empty item; expected comma-separated values such as "
                          f"--{name} {example}; remove the extra comma")
    try:
        values = [kind(item) for item in items]
    except ValueError:
        raise ConfigError(f"--{name} {text!r} is not a comma-separated list of {kind.__name__}s; e.g. "
                          f"--{name} {example}") from None
    if kind is float and not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--{name} {text!r} holds a non-finite value; expected finite numbers; fix --{name}")
    repeated = next((v for i, v in enumerate(values) if v in values[:i]), None) if unique else None
    if repeated is not None:
        raise ConfigError(f"--{name} {text!r} lists {repeated!r} twice; expected each value once (a repeat would "
                          f"train the same configuration twice); remove the repeat")
    return values


def bounded_int(value: int | None, name: str, low: int, high: int) -> int | None:
    if value is not None and not low <= value <= high:
        raise ConfigError(f"--{name} got {value}; expected an integer from {low} to {high}; fix --{name}")
    return value


def parse_seeds(text: str) -> list[int]:
    """--seeds: a count N (seeds 0..N-1) or a list of seeds, each 0..MAX_SEED (as gl.fit and glassloop fit)."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        count = int(text)
        if not 1 <= count <= MAX_CONFIGURATIONS:
            raise ConfigError(f"--seeds {text!r}: a count must be from 1 to {MAX_CONFIGURATIONS}; expected e.g. "
                              "--seeds 4 (seeds 0..3) or a list --seeds 3,7,11; fix --seeds")
        return list(range(count))
    seeds = number_list(text, "seeds", int)
    bad = next((seed for seed in seeds if not 0 <= seed <= MAX_SEED), None)
    if bad is not None:
        raise ConfigError(f"--seeds {text!r} holds seed {bad}; expected seeds from 0 to {MAX_SEED} (or a count "
                          "such as --seeds 4); fix --seeds")
    return seeds


def parse_hidden(text: str) -> list[int]:
    if text.strip().lower() in ("none", "linear"):
        return []
    sizes = number_list(text, "hidden", int, unique=False) if text.strip() else []
    if not text.strip() or len(sizes) > 64 or not all(1 <= size <= 65536 for size in sizes):
        raise ConfigError(f"--hidden {text!r}; expected up to 64 layer sizes from 1 to 65536, e.g. 64,64 (or none "
                          "for a linear model); fix --hidden")
    return sizes


def check_mlflow_target(value: Any) -> None:
    """--mlflow [URI], checked before training: a known scheme, and a local store that opens."""
    if value is True:
        uri = None
    else:
        uri = str(value).strip()
        try:
            scheme = urlsplit(uri).scheme.lower()
        except ValueError:
            scheme = "?"
        base = scheme.split("+")[0]  # postgresql+psycopg2://
        known = not uri or len(scheme) <= 1 or base in MLFLOW_SCHEMES  # one letter: a Windows drive, a path
        if not uri or not known or (base == "sqlite" and not uri.startswith("sqlite:///")) or (
                base in ("http", "https") and not urlsplit(uri).netloc):
            raise ConfigError(f"--mlflow {uri!r} is not a tracking URI MLflow can use; expected sqlite:///mlflow.db, "
                              "file:/path/mlruns, http(s)://host:port, databricks, or a plain directory path; fix "
                              "--mlflow (or leave it out)")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("--mlflow needs mlflow, which is not installed; pip install mlflow, or leave out "
                          "--mlflow") from None
    if uri is not None and urlsplit(uri).scheme.lower() in ("http", "https", "databricks", "databricks-uc"):
        return  # a server: probing it would wait on network retries; its errors come after training
    try:  # a local store opens now (and its errors are bad input), not after the whole sweep has trained
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as error:  # MLflow raises many types for unusable stores
        raise ConfigError(f"cannot use MLflow tracking URI {uri!r} ({type(error).__name__}: "
                          f"{' '.join(str(error).split())[:160]}); expected e.g. sqlite:///mlflow.db; fix --mlflow") \
            from None


def sweep_parser() -> Any:
    from glassloop.cli import ArgumentParser
    from glassloop.cli.fit import add_data_flags

    parser = ArgumentParser(prog="glassloop sweep", description="Train many configurations at once.")
    add = parser.add_argument
    add("data", nargs="?", help="CSV/Parquet table (with --target); default: --workload")
    add_data_flags(parser)  # --target, --features, --split, --time-column, ... exactly as `glassloop fit`
    add("--workload", default=None, help="built-in data and model: ssa (default) or linreg")
    add("--hidden", default="64,64", help="hidden sizes for DATA's MLP (default 64,64)")
    add("--seeds", default="4", help="a count N (seeds 0..N-1) or a list 3,7,11 (default 4)")
    add("--lr", default="1e-3", help="learning rates, comma-separated (default 1e-3)")
    add("--weight-decay", default=None, help="weight decays, comma-separated (default 0)")
    add("--momentum", default=None, help="SGD momenta, comma-separated (default 0)")
    add("--clip-grad-norm", default=None, help="max gradient norms, comma-separated")
    add("--optimizer", default="adam", help="sgd, adam (default) or adamw")
    add("--loss", default=None, help="loss name (default mse; cross_entropy for class targets)")
    add("--scheduler", choices=list(SCHEDULERS), help="an LR schedule per configuration, as glassloop fit's")
    add("--epochs", type=int, default=None)
    add("--batch-size", type=int, default=None)
    add("--patience", type=int, default=None, help="early-stopping patience per configuration")
    add("--method", default="auto", help="auto, bmm or vmap")
    add("--out", help="write the table (one row per configuration) to this CSV file")
    add("--run-dir", help="keep latest.pt (every epoch) and sweep.csv here; with --resume, continue it")
    add("--resume", action="store_true", help="continue the sweep saved in --run-dir, bitwise")
    add("--mlflow", nargs="?", const=True, default=None,
        help="log a parent run and one child per configuration (optional tracking URI)")
    add("--quiet", action="store_true", help="only the summary, no per-epoch lines")
    return parser


def grid_from_flags(args: Any) -> dict[str, Any]:
    bounded_int(args.epochs, "epochs", 1, MAX_EPOCHS)
    bounded_int(args.batch_size, "batch-size", 1, MAX_BATCH_SIZE)
    bounded_int(args.patience, "patience", 1, MAX_EPOCHS)
    seeds = parse_seeds(args.seeds)
    grid: dict[str, Any] = {"lr": number_list(args.lr, "lr")}
    for key, flag in (("weight_decay", "weight-decay"), ("momentum", "momentum"), ("clip_grad_norm", "clip-grad-norm")):
        text = getattr(args, key)
        if text is not None:  # only swept keys appear in the grid (and in the summary's settings)
            grid[key] = number_list(text, flag)
    grid["seed"] = seeds
    count = math.prod(len(values) for values in grid.values())
    if count > MAX_CONFIGURATIONS:
        raise ConfigError(f"the grid holds {count} configurations; expected at most {MAX_CONFIGURATIONS}; sweep fewer "
                          "values (or split it into several sweeps)")
    if args.resume and args.run_dir is None:
        raise ConfigError("--resume needs --run-dir DIR (the directory holding the sweep's latest.pt)")
    if args.run_dir is not None and not args.resume and (Path(args.run_dir) / "latest.pt").is_file():
        raise ConfigError(f"{Path(args.run_dir) / 'latest.pt'} already holds a sweep; pass --resume to continue it, "
                          "or choose a new --run-dir")
    return grid


def output_file(args: Any) -> Path | None:
    if args.out is None:
        return None
    from glassloop.tabular.rundir import check_output_file

    out = check_output_file(args.out, "--out")
    data = Path(args.data) if args.data is not None else None
    if data is not None and data.exists() and out.exists() and os.path.samefile(data, out):
        raise ConfigError(f"--out {args.out!r} is the DATA table itself; writing the sweep table there would "
                          "destroy it; expected a new CSV path; choose another --out")
    return out


def data_from_flags(args: Any, count: int) -> tuple[Any, Any, Callable[[], nn.Module], str, dict[str, Any]]:
    """train, val, build_model, loss and default batch size/epochs; the model's size checked before it is built."""
    from glassloop.cli.fit import DATA_FLAGS

    if args.data is not None:
        hidden = parse_hidden(args.hidden)
        train, val, build, loss, sizes = table_data(args, hidden)
        defaults: dict[str, Any] = {"batch_size": 32, "epochs": 30}
        parameters = mlp_parameters(sizes)
    else:
        given = [f"--{flag.replace('_', '-')}" for flag in ("target", *DATA_FLAGS) if getattr(args, flag) is not None]
        if given:
            raise ConfigError(f"{given[0]} needs a DATA file; e.g. glassloop sweep data.csv --target price")
        train, val, build, defaults = workload(args.workload or "ssa")
        loss, parameters = "mse", sum(p.numel() for p in build().parameters())
    if parameters * count > MAX_PARAMETERS:
        raise ConfigError(f"{count} configurations of a {parameters:,}-parameter model need {parameters * count:,} "
                          f"parameters at once; expected at most {MAX_PARAMETERS:,}; sweep fewer configurations or "
                          "use smaller --hidden layers")
    return train, val, build, args.loss or loss, defaults


def main(argv: list[str]) -> int:
    """`glassloop sweep`: e.g. `glassloop sweep --workload ssa --seeds 16 --lr 1e-3,3e-3 --epochs 30`.

    Every option, the output file and the MLflow store are checked before training, so bad input costs no
    training time (exit 2, one line); the table is written atomically.
    """
    args = sweep_parser().parse_args(argv)
    if args.data is not None and args.workload is not None:
        raise ConfigError("give either DATA --target COL or --workload NAME, not both")
    grid = grid_from_flags(args)
    out = output_file(args)
    if args.mlflow is not None:
        check_mlflow_target(args.mlflow)
    train, val, build, loss, defaults = data_from_flags(args, math.prod(len(v) for v in grid.values()))
    epochs = args.epochs if args.epochs is not None else defaults["epochs"]
    batch_size = args.batch_size if args.batch_size is not None else defaults["batch_size"]
    result = sweep(build, train, val, grid, loss=loss, optimizer=args.optimizer, epochs=epochs,
                   batch_size=batch_size, patience=args.patience, scheduler=args.scheduler, method=args.method,
                   mlflow=None, verbose=not args.quiet, run_dir=args.run_dir, resume=args.resume)
    if args.quiet:
        print(result.report())
    if out is not None:  # before MLflow: a tracking failure must not lose the table
        from glassloop.tabular.rundir import write_output_file

        write_output_file(result.to_csv().encode("utf-8"), out, "--out")
        print(f"table: {args.out}")
    if args.mlflow is not None:
        log_cli_sweep(result, args, {"loss": loss, "optimizer": args.optimizer, "epochs": epochs,
                                     "batch_size": batch_size, "shuffle": True, "patience": args.patience,
                                     "scheduler": args.scheduler, "method": result.method,
                                     "configurations": len(result)}, out)
    return 0


def log_cli_sweep(result: Any, args: Any, options: dict[str, Any], out: Path | None) -> None:
    try:
        result.mlflow_run_id = log_to_mlflow(result, args.mlflow, options)
    except ConfigError:
        raise
    except Exception as error:  # MLflow raises many types; the sweep itself is done (and its table written)
        raise ConfigError(f"the sweep trained{' and its table is in ' + repr(args.out) if out else ''}, but "
                          f"logging to MLflow failed ({type(error).__name__}: {' '.join(str(error).split())[:160]}); "
                          "expected a reachable tracking store; fix --mlflow") from None
    print(f"mlflow parent run: {result.mlflow_run_id}")
