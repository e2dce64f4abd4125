"""What `gl.MLflowLogger` (and, with --tensorboard, `TensorBoardLogger`) costs on the `ssa` workload: `gl.fit` with
and without it, alternating, in one process.

    .venv/bin/python bench/mlflow_overhead.py [--rounds 7] [--epochs 60] [--no-model] [--no-plot] [--tensorboard]

The store is a fresh SQLite file + local artifacts in a temp dir. One warm-up round of each is run first and
reported apart: it pays `import mlflow`, the SQLite schema creation and the first model save, once per process.
The timed rounds count everything the logger does inside `fit`: opening the run and logging params
(at the end of the first epoch: the store is opened lazily), gathering each epoch's metrics (on_epoch_end; written
in one log_batch per `flush_seconds`), and the end (flush, history.csv, curves.png when glassloop.analysis.plots
exists, diagnosis, the model with its signature and input example, the final status).
Prints per round and the medians: the total ratio, the per-epoch cost on the training thread, and the one-time
start and end costs from the logger's own `seconds` (the end split into the curves plot and the model).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import WORKLOADS, mlp  # noqa: E402

import glassloop as gl  # noqa: E402


def run_fit(train: Any, val: Any, epochs: int, logger: Any = None) -> float:
    spec = WORKLOADS["ssa"]
    torch.manual_seed(0)
    model = mlp(spec["sizes"])
    started = time.perf_counter()
    gl.fit(model, train, val, loss="mse", optimizer="adam", lr=1e-3, epochs=epochs, batch_size=spec["batch_size"],
           seed=42, verbose=False, callbacks=[logger] if logger is not None else [])
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=WORKLOADS["ssa"]["epochs"])
    parser.add_argument("--no-model", action="store_true", help="MLflowLogger(log_model=False)")
    parser.add_argument("--no-plot", action="store_true", help="MLflowLogger(plot=False)")
    parser.add_argument("--tensorboard", action="store_true", help="also time TensorBoardLogger rounds")
    args = parser.parse_args()
    train, val = WORKLOADS["ssa"]["data"]()
    folder = Path(tempfile.mkdtemp(prefix="glassloop-mlflow-bench-"))
    uri = f"sqlite:///{folder / 'mlflow.db'}"

    def logger() -> Any:
        return gl.MLflowLogger(experiment="bench", tracking_uri=uri, log_model=not args.no_model,
                               plot=not args.no_plot)

    started = time.perf_counter()
    import mlflow  # noqa: F401  - timed apart: paid once per process by whoever logs first
    import_seconds = time.perf_counter() - started
    cold_bare = run_fit(train, val, args.epochs)
    cold_logger = logger()
    cold_logged = run_fit(train, val, args.epochs, cold_logger)
    print(f"ssa, {args.epochs} epochs, store {uri}")
    print(f"warm-up (once per process): import mlflow {import_seconds:.2f}s; first fit bare {cold_bare:.3f}s, "
          f"with logger {cold_logged:.3f}s (start {cold_logger.seconds['start']:.3f}s incl. schema "
          f"creation, end {cold_logger.seconds['end']:.3f}s)")

    bare, logged, costs = [], [], []
    for index in range(args.rounds):
        order = (False, True) if index % 2 == 0 else (True, False)  # alternate who goes first
        for with_logger in order:
            if with_logger:
                timed = logger()
                logged.append(run_fit(train, val, args.epochs, timed))
                costs.append(timed.seconds)
            else:
                bare.append(run_fit(train, val, args.epochs))
        print(f"round {index + 1}: bare {bare[-1]:.3f}s  logger {logged[-1]:.3f}s  ratio {logged[-1] / bare[-1]:.3f}  "
              + "  ".join(f"{k} {v * 1000:.0f}ms" for k, v in costs[-1].items()))

    bare_median, logged_median = statistics.median(bare), statistics.median(logged)
    cost = {key: statistics.median(c[key] for c in costs) for key in costs[0]}
    print(f"median bare {bare_median:.3f}s, with MLflowLogger {logged_median:.3f}s: "
          f"total ratio {logged_median / bare_median:.3f} ({(logged_median / bare_median - 1) * 100:+.1f}%)")
    print(f"per epoch on the training thread: {cost['epochs'] / args.epochs * 1e6:.0f} us "
          f"({cost['epochs'] / bare_median * 100:.1f}% of a bare fit over {args.epochs} epochs, writes included)")
    print(f"one-time: start {cost['start'] * 1000:.0f} ms, end {cost['end'] * 1000:.0f} ms (plot "
          f"{cost['plot'] * 1000:.0f} ms, model {cost['model'] * 1000:.0f} ms): "
          f"{(cost['start'] + cost['end']) / bare_median * 100:.1f}% of a bare fit")
    logger_total = cost["start"] + cost["epochs"] + cost["end"]
    print(f"logger's own time {logger_total * 1000:.0f} ms = {logger_total / bare_median * 100:.1f}% of a bare fit "
          "(the difference to the total ratio is machine noise and cache/GC effects)")
    if args.tensorboard:
        tensorboard_rounds(train, val, args.epochs, args.rounds, folder)
    return 0


def tensorboard_rounds(train: Any, val: Any, epochs: int, rounds: int, folder: Path) -> None:
    """TensorBoardLogger against a bare fit, alternating; one warm-up round pays `import tensorboard`."""
    from glassloop.callbacks.tensorboard import TensorBoardLogger

    started = time.perf_counter()
    run_fit(train, val, epochs, TensorBoardLogger(folder / "tb-warm-up"))
    print(f"TensorBoard warm-up fit (imports torch.utils.tensorboard): {time.perf_counter() - started:.3f}s")
    bare, logged = [], []
    for index in range(rounds):
        order = (False, True) if index % 2 == 0 else (True, False)
        for with_logger in order:
            if with_logger:
                logged.append(run_fit(train, val, epochs, TensorBoardLogger(folder / f"tb-{index}")))
            else:
                bare.append(run_fit(train, val, epochs))
    bare_median, logged_median = statistics.median(bare), statistics.median(logged)
    print(f"median bare {bare_median:.3f}s, with TensorBoardLogger {logged_median:.3f}s: total ratio "
          f"{logged_median / bare_median:.3f} ({(logged_median / bare_median - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    raise SystemExit(main())
