"""Multi-process training with PyTorch's own engine: `torchrun` + DistributedDataParallel.

Under `torchrun` (WORLD_SIZE > 1 in the environment) `gl.fit` joins the process group (gloo on CPU, NCCL with
CUDA), wraps the model in DDP, shards every global batch across ranks, all-reduces the epoch metrics, and lets
only rank 0 print, log and write checkpoints.
"""

from __future__ import annotations

import ctypes
import datetime
import os
import signal
import sys
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
    die_with_launcher()
    timeout = collective_timeout()
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if attempt == "0":
        dist.init_process_group(backend=backend, timeout=timeout)
        return True
    # After an elastic restart the launcher's store still holds the dead attempt's addresses under the same keys,
    # and gloo/NCCL would try to connect to them (pytorch/pytorch#167288): give this attempt its own key prefix.
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          int(os.environ["WORLD_SIZE"]), is_master=False)
    dist.init_process_group(backend=backend, store=dist.PrefixStore(f"glassloop/attempt-{attempt}", store),
                            rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]),
                            timeout=timeout)
    return True


def collective_timeout() -> datetime.timedelta:
    """A rank whose peer is gone fails within this time instead of blocking for gloo's default 30 minutes
    (GLASSLOOP_DDP_TIMEOUT seconds, default 300)."""
    return datetime.timedelta(seconds=float(os.environ.get("GLASSLOOP_DDP_TIMEOUT", "300")))


def die_with_launcher() -> None:
    """Linux: SIGTERM this rank when its parent (torchrun's agent) dies, so no orphaned rank blocks forever."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
        except OSError:
            pass


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


def all_reduce_tensor(tensor: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def same_on_all_ranks(value: Any) -> Any:
    """Rank 0's value on every rank (decisions read from it, such as early stopping, then agree)."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def leave(created: bool) -> None:
    if created and dist.is_initialized():
        dist.destroy_process_group()


def main_process_only(callbacks: list[Any]) -> list[Any]:
    """On ranks other than 0, drop the reporters (console, MLflow): one copy of each line and each run."""
    if is_main_process():
        return callbacks
    return [c for c in callbacks if getattr(c, "band", "user") != "reporters"]
