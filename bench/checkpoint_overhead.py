"""Cost of writing latest.pt (sealed, with latest.prev.pt), best.pt and history.csv on the `ssa` workload, against a
bare `gl.fit`; optionally with MLflow tracking too.

    .venv/bin/python bench/checkpoint_overhead.py [--rounds 5] [--epochs 60] [--tracking]

Alternating rounds in one process; prints the median fit seconds of each setting and the overhead ratio (target:
tracking + checkpointing <= 10% on a 5-second fit, about --epochs 250 here). `--tracking` adds a
`gl.MLflowLogger` (fresh SQLite store in a temp dir, no model logged) beside the every-epoch checkpoint.
Last, the training thread's CPU time inside `Checkpoint.on_epoch_end` (`time.thread_time`: what the loop pays,
the writer thread's sealing and disk work excluded; unlike wall time it hardly moves with the machine's load).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import torch

import glassloop as gl
from glassloop.core.workloads import mlp, ssa


def fit(train: Any, val: Any, epochs: int, callbacks: list[Any]) -> float:
    torch.manual_seed(0)
    model = mlp((4, 64, 64, 1))
    started = time.perf_counter()
    gl.fit(model, train, val=val, epochs=epochs, batch_size=64, seed=42, callbacks=callbacks, verbose=False)
    return time.perf_counter() - started


def settings(tmp: str, tracking: bool) -> dict[str, Any]:
    """name -> a function of the round index giving that setting's callbacks."""
    chosen: dict[str, Any] = {
        "bare": lambda r: [],
        "every epoch": lambda r: [gl.Checkpoint(f"{tmp}/every-{r}", plot=False)],
        "every_seconds=1": lambda r: [gl.Checkpoint(f"{tmp}/seconds-{r}", plot=False, every_seconds=1.0)],
    }
    if tracking:
        uri = f"sqlite:///{tmp}/mlflow.db"
        chosen["every epoch + MLflow"] = lambda r: [
            gl.Checkpoint(f"{tmp}/tracked-{r}", plot=False),
            gl.MLflowLogger(experiment="bench", tracking_uri=uri, log_model=False, plot=False)]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--tracking", action="store_true", help="also time Checkpoint + MLflowLogger")
    args = parser.parse_args()
    train, val = ssa()
    with tempfile.TemporaryDirectory() as tmp:
        chosen = settings(tmp, args.tracking)
        fit(train, val, 2, [])  # warm-up: the first optimizer imports torch._dynamo
        if args.tracking:
            fit(train, val, 2, chosen["every epoch + MLflow"]("warm-up"))  # import mlflow, create the schema
        times: dict[str, list[float]] = {name: [] for name in chosen}
        for round_index in range(args.rounds):
            order = list(chosen) if round_index % 2 == 0 else list(reversed(chosen))
            for name in order:
                times[name].append(fit(train, val, args.epochs, chosen[name](round_index)))
    bare = statistics.median(times["bare"])
    print(f"ssa, {args.epochs} epochs, {args.rounds} alternating rounds (latest.pt sealed + latest.prev.pt, "
          "history.csv, best.pt on improvement)")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{name:>22}: {median:.3f} s median (min {min(seconds):.3f})  overhead {100 * (median / bare - 1):+.1f}%"
              f"  ({1000 * (median - bare) / args.epochs:+.2f} ms an epoch)")
    training_thread_cost(train, val, args.epochs)


class TimedCheckpoint(gl.Checkpoint):
    """Checkpoint that adds up the calling thread's CPU time spent in on_epoch_end."""

    cpu = 0.0

    def on_epoch_end(self, state: Any) -> None:
        started = time.thread_time()
        super().on_epoch_end(state)
        TimedCheckpoint.cpu += time.thread_time() - started


def training_thread_cost(train: Any, val: Any, epochs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        TimedCheckpoint.cpu = 0.0
        fit(train, val, epochs, [TimedCheckpoint(f"{tmp}/timed", plot=False)])
    print(f"training-thread CPU in Checkpoint.on_epoch_end: {1000 * TimedCheckpoint.cpu / epochs:.3f} ms an epoch")


if __name__ == "__main__":
    main()
