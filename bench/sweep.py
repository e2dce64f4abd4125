"""Cost of `gl.sweep` against one run of the lesson's own loop, measured in the same process, alternating.

    .venv/bin/python bench/sweep.py [--rounds 3] [--epochs 30] [--sizes 16,32] [--vmap]

Workload `ssa` (DESIGN §4) for 30 epochs. The lesson loop is bench/speed.py's (TensorDataset + DataLoader
(shuffle=True) + torch.optim.Adam + loss.item() + per-epoch validation) training ONE model. A sweep of K
configurations trains K models with per-epoch validation: K=16 is 16 seeds, K=32 is lr {1e-3, 3e-3} x 16 seeds.
The sweep's timer covers everything inside `gl.sweep` (building the K models included). Prints the cost ratio
sweep/lesson (targets: K=16 <= 1.5x, K=32 <= 2.5x), model-samples/s and the share of the FLOP limit
(29.0 kFLOP per ssa training sample; peak 167 GFLOP/s; 1.62 M samples/s at ssa's own GEMM shapes,
reference/performance.md §4).
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
from speed import lesson_loop, lesson_loop_1thread  # noqa: E402
from workloads import WORKLOADS, mlp  # noqa: E402

import glassloop as gl  # noqa: E402

FLOP_PER_SAMPLE = 29.0e3
PEAK_FLOPS = 167e9
STEP_SHAPE_CEILING = 1_624_545  # samples/s at ssa's GEMM shapes (performance.md §4)


def grid_for(size: int) -> dict[str, list]:
    if size <= 16:
        return {"seed": list(range(size))}
    return {"lr": [1e-3, 3e-3], "seed": list(range(size // 2))}


def time_lesson(train, val, epochs: int, batch_size: int, one_thread: bool) -> float:
    torch.manual_seed(0)
    model = mlp((4, 64, 64, 1))
    started = time.perf_counter()
    (lesson_loop_1thread if one_thread else lesson_loop)(model, train, val, epochs, batch_size)
    return time.perf_counter() - started


def time_sweep(train, val, epochs: int, batch_size: int, size: int, method: str) -> tuple[float, float]:
    started = time.perf_counter()
    result = gl.sweep(lambda: mlp((4, 64, 64, 1)), train, val, grid_for(size), epochs=epochs,
                      batch_size=batch_size, verbose=False, method=method)
    seconds = time.perf_counter() - started
    return seconds, statistics.median(row["val_loss"] for row in result.table)


def busy_cores() -> float:
    """1-minute load average: a rough view of what the neighbours were doing on this shared 2-core VM."""
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--sizes", default="16,32")
    parser.add_argument("--vmap", action="store_true", help="also time the torch.func.vmap path")
    args = parser.parse_args()
    spec = WORKLOADS["ssa"]
    train, val = spec["data"]()
    batch_size, epochs = spec["batch_size"], args.epochs
    sizes = [int(s) for s in args.sizes.split(",")]
    # Warm-up outside every timer: the first torch.optim optimizer imports torch._dynamo (~2 s).
    small = (torch.rand(8, 4), torch.rand(8, 1))
    lesson_loop(mlp((4, 8, 1)), small, small, 1, 4)
    gl.sweep(lambda: mlp((4, 8, 1)), small, small, {"seed": [0, 1]}, epochs=1, batch_size=4, verbose=False)
    # lesson-1t: the same loop pinned to 1 thread. On a busy machine the default 2-thread lesson loop collapses
    # (performance.md §7) and would flatter every ratio, so both are printed and the targets are read on both.
    contenders = [("lesson", None, None), ("lesson-1t", None, None)] + [(f"sweep-K{k}", k, "bmm") for k in sizes]
    if args.vmap:
        contenders += [(f"vmap-K{k}", k, "vmap") for k in sizes]
    times: dict[str, list[float]] = {name: [] for name, _, _ in contenders}
    val_mse: dict[str, float] = {}
    loads = []
    for round_index in range(args.rounds):
        order = contenders if round_index % 2 == 0 else list(reversed(contenders))
        for name, size, method in order:
            loads.append(busy_cores())
            if size is None:
                times[name].append(time_lesson(train, val, epochs, batch_size, name == "lesson-1t"))
            else:
                seconds, val_mse[name] = time_sweep(train, val, epochs, batch_size, size, method)
                times[name].append(seconds)
    lesson = statistics.median(times["lesson"])
    lesson_1t = statistics.median(times["lesson-1t"])
    samples = len(train[0]) * epochs
    print(f"\nssa: {len(train[0])} train rows, batch {batch_size}, {epochs} epochs, {args.rounds} alternating rounds, "
          f"torch default threads={torch.get_num_threads()}, load average during the runs "
          f"{min(loads):.2f}..{max(loads):.2f}")
    print(f"{'contender':>10} | {'seconds med':>11} | {'min':>6} | {'max':>6} | {'cost x lesson':>13} | "
          f"{'cost x 1t':>9} | {'model-samples/s':>15} | {'x lesson thr.':>13} | {'% peak':>6} | {'% step-shape':>12} | val MSE med")
    for name, size, _ in contenders:
        runs = times[name]
        seconds = statistics.median(runs)
        models = size or 1
        ratios = [run / lesson_run for run, lesson_run in zip(runs, times["lesson"])]
        ratios_1t = [run / lesson_run for run, lesson_run in zip(runs, times["lesson-1t"])]
        throughput = models * samples / seconds
        print(f"{name:>10} | {seconds:>11.3f} | {min(runs):>6.2f} | {max(runs):>6.2f} | "
              f"{statistics.median(ratios):>13.2f} | {statistics.median(ratios_1t):>9.2f} | {throughput:>15,.0f} | {throughput / (samples / lesson):>13.1f} | "
              f"{100 * throughput * FLOP_PER_SAMPLE / PEAK_FLOPS:>6.1f} | "
              f"{100 * throughput / STEP_SHAPE_CEILING:>12.1f} | {f'{val_mse[name]:.6f}' if name in val_mse else '-'}")
    print(f"cost x lesson (x 1t) = seconds / one lesson-loop run at default threads (at 1 thread), median of "
          f"per-round ratios; targets: K=16 <= 1.5, K=32 <= 2.5. lesson {lesson:.2f} s, lesson-1t {lesson_1t:.2f} s "
          f"(quiet reference: ~1.4 s for 30 epochs, performance.md §3)")


if __name__ == "__main__":
    main()
