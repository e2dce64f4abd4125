"""Speed of `gl.fit` against the lesson's own loop, measured in the same process, alternating.

    .venv/bin/python bench/speed.py [--workloads ssa,wide] [--rounds 5] [--epochs N]

The lesson loop is lesson 004's: TensorDataset + DataLoader(shuffle=True), torch.optim.Adam, F.mse_loss,
`loss.item()` each step, validation under eval + no_grad each epoch. Both start from identical weights. The fit
timer covers building the optimizer and all epochs (imports and data creation are outside it). Prints samples/s,
the median ratio, and the final validation MSE of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import WORKLOADS, mlp  # noqa: E402

import glassloop as gl  # noqa: E402


def lesson_loop(model, train, val, epochs, batch_size):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(*train), batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        model.train()
        train_loss = 0.0
        for x_batch, y_batch in loader:
            optimizer.zero_grad()
            loss = F.mse_loss(model(x_batch), y_batch)
            loss.backward()
            optimizer.step()
            train_loss += loss.item()
        model.eval()
        with torch.no_grad():
            F.mse_loss(model(val[0]), val[1]).item()


def glassloop_fit(model, train, val, epochs, batch_size):
    gl.fit(model, train, val=val, loss="mse", optimizer="adam", lr=1e-3, epochs=epochs, batch_size=batch_size,
           seed=42, verbose=False)


def lesson_loop_1thread(model, train, val, epochs, batch_size):
    # The same lesson loop pinned to one intra-op thread, as gl.fit does for small models: separates the
    # thread-count effect (large on a busy 2-core machine) from the loop's own efficiency.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        lesson_loop(model, train, val, epochs, batch_size)
    finally:
        torch.set_num_threads(previous)


def lean_loop(model, train, val, epochs, batch_size):
    """The lean hand loop a practitioner writes for speed: fused Adam, a seeded permutation and `split` views
    instead of a DataLoader, gradients set to None, one thread for small models (as gl.fit's policy)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1 if batch_size * sum(p.numel() for p in model.parameters()) < 4_000_000 else previous)
    try:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        generator = torch.Generator().manual_seed(0)
        x, y = train
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(x), generator=generator)
            for x_batch, y_batch in zip(x[order].split(batch_size), y[order].split(batch_size)):
                optimizer.zero_grad(set_to_none=True)
                loss = F.mse_loss(model(x_batch), y_batch)
                loss.backward()
                optimizer.step()
                loss.item()
            model.eval()
            with torch.no_grad():
                F.mse_loss(model(val[0]), val[1]).item()
    finally:
        torch.set_num_threads(previous)


CONTENDERS = {"lesson": lesson_loop, "lesson-1t": lesson_loop_1thread, "lean": lean_loop,
              "glassloop": glassloop_fit}


def run_once(name, spec, train, val, epochs):
    torch.manual_seed(0)
    model = mlp(spec["sizes"])
    started = time.perf_counter()
    CONTENDERS[name](model, train, val, epochs, spec["batch_size"])
    seconds = time.perf_counter() - started
    with torch.no_grad():
        model.eval()
        val_mse = F.mse_loss(model(val[0]), val[1]).item()
    return len(train[0]) * epochs / seconds, val_mse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="ssa,wide")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="override the workload's epochs")
    args = parser.parse_args()
    # Warm-up outside every timer: the first torch.optim optimizer in a process imports torch._dynamo (~2 s).
    glassloop_fit(mlp((4, 8, 1)), (torch.rand(8, 4), torch.rand(8, 1)), None, 1, 4)
    lesson_loop(mlp((4, 8, 1)), (torch.rand(8, 4), torch.rand(8, 1)), (torch.rand(8, 4), torch.rand(8, 1)), 1, 4)
    for workload in args.workloads.split(","):
        spec = WORKLOADS[workload]
        train, val = spec["data"]()
        epochs = args.epochs or spec["epochs"]
        results = {name: [] for name in CONTENDERS}
        for round_index in range(args.rounds):
            order = list(CONTENDERS) if round_index % 2 == 0 else list(reversed(CONTENDERS))
            for name in order:
                results[name].append(run_once(name, spec, train, val, epochs))
        lesson = statistics.median(r[0] for r in results["lesson"])
        print(f"\n{workload}: {len(train[0])} train rows, batch {spec['batch_size']}, {epochs} epochs, "
              f"{args.rounds} alternating rounds, torch threads default={torch.get_num_threads()}")
        print(f"{'contender':>10} | {'samples/s median':>16} | {'min':>9} | {'max':>9} | {'x lesson':>8} | val MSE")
        for name, runs in results.items():
            speeds = [r[0] for r in runs]
            ratios = [mine[0] / base[0] for mine, base in zip(runs, results["lesson"])]
            print(f"{name:>10} | {statistics.median(speeds):>16,.0f} | {min(speeds):>9,.0f} | {max(speeds):>9,.0f} | "
                  f"{statistics.median(ratios):>8.2f} | {statistics.median(r[1] for r in runs):.6f}")
        print(f"median ratio glassloop/lesson: {statistics.median(r[0] for r in results['glassloop']) / lesson:.2f}x")
        lean = [mine[0] / base[0] for mine, base in zip(results["glassloop"], results["lean"])]
        print(f"median ratio glassloop/lean hand loop: {statistics.median(lean):.2f}x")


if __name__ == "__main__":
    main()
