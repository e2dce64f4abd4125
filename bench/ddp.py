"""`gl.fit` under torchrun (DDP, gloo) against one process, same global batch, on the `ssa` workload.

    .venv/bin/python bench/ddp.py                                                   # one process
    .venv/bin/python -m torch.distributed.run --standalone --nproc_per_node=2 bench/ddp.py

Rank 0 prints the fit's seconds and samples/s (process start-up and imports are outside the timer).
"""

from __future__ import annotations

import time

import torch

import glassloop as gl
from glassloop.core.distributed import is_main_process, launched_by_torchrun
from glassloop.core.workloads import mlp, ssa


def main() -> None:
    train, val = ssa()
    # Warm-up outside the timer: the first torch.optim optimizer in a process imports torch._dynamo (~1.5 s).
    gl.fit(mlp((4, 8, 1)), (train[0][:64], train[1][:64]), epochs=1, device="cpu", verbose=False)
    torch.manual_seed(42)
    model = mlp((4, 64, 64, 1))
    started = time.perf_counter()
    history = gl.fit(model, train, val=val, epochs=60, batch_size=64, seed=42, device="cpu", verbose=False)
    seconds = time.perf_counter() - started
    if is_main_process():
        world = "DDP, 2 processes" if launched_by_torchrun() else "1 process"
        print(f"{world}: fit {seconds:.2f} s, {len(train[0]) * 60 / seconds:,.0f} samples/s, "
              f"val MSE {history.records[-1]['val_loss']:.6f}")


if __name__ == "__main__":
    main()
