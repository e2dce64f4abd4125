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
from glassloop.workloads import mlp, ssa


def fit(train, val, run_dir=None) -> float:
    torch.manual_seed(0)
    model = mlp((4, 64, 64, 1))
    callbacks = [gl.Checkpoint(run_dir, plot=False)] if run_dir else []
    started = time.perf_counter()
    gl.fit(model, train, val=val, epochs=60, batch_size=64, seed=42, callbacks=callbacks, verbose=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    train, val = ssa()
    fit(train, val)  # warm-up: the first optimizer imports torch._dynamo
    bare, checkpointed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            pair = [("bare", None), ("checkpoint", f"{tmp}/run{round_index}")]
            for name, run_dir in pair if round_index % 2 == 0 else reversed(pair):
                (bare if name == "bare" else checkpointed).append(fit(train, val, run_dir))
    b, c = statistics.median(bare), statistics.median(checkpointed)
    print(f"ssa, 60 epochs, {args.rounds} alternating rounds")
    print(f"bare gl.fit:                    {b:.3f} s (median; min {min(bare):.3f})")
    print(f"with latest.pt/best.pt + csv:   {c:.3f} s (median; min {min(checkpointed):.3f})")
    print(f"overhead: {100 * (c / b - 1):+.1f}%  (per epoch {1000 * (c - b) / 60:.2f} ms)")


if __name__ == "__main__":
    main()
