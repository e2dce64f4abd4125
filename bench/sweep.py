"""`gl.sweep` K=32 against the GEMM ceiling at the step shapes, and against the lesson's own loop.

    .venv/bin/python bench/sweep.py [--rounds 5] [--workloads ssa,wide] [--k 32] [--wide-epochs 1] [--schedule]

For each workload (`ssa` MLP 4-64-64-1 batch 64; `wide` MLP 32-256-256-1 batch 256) and each round, in
alternating order, it times:
- the GEMM ceiling: only the matrix products of one training step of one model (forward `addmm` per layer, `mm`
  for dW and dX in the backward), repeated, with preallocated outputs: the samples/s no loop at these shapes can
  beat without changing the arithmetic;
- `gl.sweep` with K configurations (lr {1e-3, 3e-3} x K/2 seeds), timed end to end (building the K models and
  per-epoch validation included); model-samples/s = K x train rows x epochs / seconds;
- (ssa) the lesson loop on one thread, for the ratio the other tables use.
Both the ceiling and the sweep run under gl.fit's thread policy for that model (glassloop.core.rules). Medians of
the interleaved rounds; the load average is printed because this is a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import lesson_loop_1thread  # noqa: E402
from workloads import WORKLOADS, mlp  # noqa: E402

import glassloop as gl  # noqa: E402
from glassloop.core.rules import choose_threads  # noqa: E402
from glassloop.core.workloads import mlp_parameters  # noqa: E402


def gemm_ceiling(sizes: tuple[int, ...], batch: int, seconds: float = 0.5) -> float:
    """Samples/s of one model's step GEMMs alone at `batch` rows."""
    x = torch.randn(batch, sizes[0])
    weights = [torch.randn(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [torch.randn(b) for b in sizes[1:]]
    outs = [torch.empty(batch, b) for b in sizes[1:]]
    grads_w = [torch.empty(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    grads_x = [torch.empty(batch, a) for a in sizes[:-1]]

    def step() -> None:
        h = x
        for w, b, out in zip(weights, biases, outs):
            h = torch.addmm(b, h, w, out=out)
        inputs = [x, *outs[:-1]]
        for layer in range(len(weights) - 1, -1, -1):
            g = outs[layer]
            torch.mm(inputs[layer].t(), g, out=grads_w[layer])
            if layer:
                torch.mm(g, weights[layer].t(), out=grads_x[layer])

    for _ in range(20):
        step()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(50):
            step()
        steps += 50
    return steps * batch / (time.perf_counter() - started)


def with_threads(count: int | None, fn, *args):
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(previous)


def time_sweep(name: str, spec: dict, train, val, k: int, epochs: int, scheduler: str | None) -> float:
    grid = {"lr": [1e-3, 3e-3], "seed": list(range(k // 2))}
    started = time.perf_counter()
    gl.sweep(lambda: mlp(spec["sizes"]), train, val, grid, epochs=epochs, batch_size=spec["batch_size"],
             verbose=False, scheduler=scheduler)
    return k * len(train[0]) * epochs / (time.perf_counter() - started)


def time_lesson(spec: dict, train, val, epochs: int) -> float:
    torch.manual_seed(0)
    started = time.perf_counter()
    lesson_loop_1thread(mlp(spec["sizes"]), train, val, epochs, spec["batch_size"])
    return len(train[0]) * epochs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workloads", default="ssa,wide")
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--ssa-epochs", type=int, default=30)
    parser.add_argument("--wide-epochs", type=int, default=1)
    parser.add_argument("--schedule", default=None, help="also time the sweep with this LR schedule, e.g. cosine")
    args = parser.parse_args()
    small = (torch.rand(8, 4), torch.rand(8, 1))  # warm-up outside every timer (torch.optim imports dynamo)
    gl.sweep(lambda: mlp((4, 8, 1)), small, small, {"seed": [0, 1]}, epochs=1, batch_size=4, verbose=False)
    lesson_loop_1thread(mlp((4, 8, 1)), small, small, 1, 4)
    for name in args.workloads.split(","):
        bench_workload(name, args)


def bench_workload(name: str, args: argparse.Namespace) -> None:
    spec = WORKLOADS[name]
    train, val = spec["data"]()
    epochs = args.ssa_epochs if name == "ssa" else args.wide_epochs
    threads = choose_threads("auto", torch.device("cpu"), spec["batch_size"], mlp_parameters(spec["sizes"]))
    contenders = {"ceiling": lambda: with_threads(threads, gemm_ceiling, spec["sizes"], spec["batch_size"]),
                  f"sweep K={args.k}": lambda: time_sweep(name, spec, train, val, args.k, epochs, None)}
    if args.schedule:
        contenders[f"sweep K={args.k} {args.schedule}"] = lambda: time_sweep(
            name, spec, train, val, args.k, epochs, args.schedule)
    if name == "ssa":
        contenders["lesson-1t"] = lambda: time_lesson(spec, train, val, epochs)
    results: dict[str, list[float]] = {key: [] for key in contenders}
    loads = []
    for round_index in range(args.rounds):
        order = list(contenders) if round_index % 2 == 0 else list(reversed(contenders))
        for key in order:
            loads.append(os.getloadavg()[0])
            results[key].append(contenders[key]())
    ceiling = statistics.median(results["ceiling"])
    print(f"\n{name}: {len(train[0])} train rows, batch {spec['batch_size']}, sizes {spec['sizes']}, {epochs} "
          f"epochs, {args.rounds} rounds, threads {threads}, load average {min(loads):.2f}..{max(loads):.2f}")
    print(f"{'contender':>22} | {'samples/s median':>16} | {'min':>10} | {'max':>10} | % of ceiling")
    for key, runs in results.items():
        ratios = [run / c for run, c in zip(runs, results["ceiling"])]
        print(f"{key:>22} | {statistics.median(runs):>16,.0f} | {min(runs):>10,.0f} | {max(runs):>10,.0f} | "
              f"{100 * statistics.median(ratios):6.1f}  (ceiling median {ceiling:,.0f})", flush=True)

if __name__ == "__main__":
    main()
