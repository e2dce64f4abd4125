"""Multi-process training with PyTorch's own engine: `torchrun` + DistributedDataParallel.

Under `torchrun` (WORLD_SIZE > 1 in the environment) `gl.fit` joins the process group (gloo on CPU, NCCL with
CUDA), wraps the model in DDP, shards every global batch across ranks, all-reduces the epoch metrics, and lets
only rank 0 print, log and write checkpoints.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return rank_and_world()[0] == 0 and os.environ.get("RANK", "0") == "0"


def join(device: torch.device) -> bool:
    """Join the process group torchrun describes; True when this call created it (and must destroy it)."""
    if not launched_by_torchrun() or not dist.is_available() or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if attempt == "0":
        dist.init_process_group(backend=backend)
        return True
    # After an elastic restart the launcher's store still holds the dead attempt's addresses under the same keys,
    # and gloo/NCCL would try to connect to them (pytorch/pytorch#167288): give this attempt its own key prefix.
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          int(os.environ["WORLD_SIZE"]), is_master=False)
    dist.init_process_group(backend=backend, store=dist.PrefixStore(f"glassloop/attempt-{attempt}", store),
                            rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    return True


def device_for_rank(device: torch.device) -> torch.device:
    if device.type == "cuda" and launched_by_torchrun():
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def same_seed(seed: int | None) -> int:
    """Every rank must draw the same batch permutation: rank 0's seed wins."""
    chosen = [seed if seed is not None else int(torch.initial_seed() % 2**31)]
    dist.broadcast_object_list(chosen, src=0)
    return chosen[0]


def all_reduce_sums(values: list[float], device: torch.device) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def leave(created: bool) -> None:
    if created and dist.is_initialized():
        dist.destroy_process_group()


def main_process_only(callbacks: list[Any]) -> list[Any]:
    """On ranks other than 0, drop the reporters (console, MLflow): one copy of each line and each run."""
    if is_main_process():
        return callbacks
    return [c for c in callbacks if getattr(c, "band", "user") != "reporters"]
