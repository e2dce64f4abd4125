"""Cost of writing latest.pt (and best.pt) every epoch on the `ssa` workload, against a bare `gl.fit`.

    .venv/bin/python bench/checkpoint_overhead.py [--rounds 5]

Alternating rounds in one process; prints the median fit seconds of each and the overhead ratio (target <= 10%).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

import glassloop as gl
from glassloop.core.workloads import mlp, ssa


def fit(train, val, run_dir=None, every_seconds=0.0) -> float:
    torch.manual_seed(0)
    model = mlp((4, 64, 64, 1))
    callbacks = [gl.Checkpoint(run_dir, plot=False, every_seconds=every_seconds)] if run_dir else []
    started = time.perf_counter()
    gl.fit(model, train, val=val, epochs=60, batch_size=64, seed=42, callbacks=callbacks, verbose=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    train, val = ssa()
    fit(train, val)  # warm-up: the first optimizer imports torch._dynamo
    times: dict[str, list[float]] = {"bare": [], "every epoch": [], "every_seconds=1": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            order = list(times) if round_index % 2 == 0 else list(reversed(times))
            for name in order:
                run_dir = None if name == "bare" else f"{tmp}/{name}-{round_index}"
                every = 1.0 if name == "every_seconds=1" else 0.0
                times[name].append(fit(train, val, run_dir, every))
    bare = statistics.median(times["bare"])
    print(f"ssa, 60 epochs, {args.rounds} alternating rounds (history.csv every epoch, best.pt on improvement)")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{name:>16}: {median:.3f} s median (min {min(seconds):.3f})  overhead {100 * (median / bare - 1):+.1f}%"
              f"  ({1000 * (median - bare) / 60:+.2f} ms an epoch)")


if __name__ == "__main__":
    main()
