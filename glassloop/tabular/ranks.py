"""`torchrun -m glassloop fit`: rank 0 decides and writes, the other ranks wait for its word and only train.

A decision that only rank 0 makes (is --out usable? the run record, with the MLflow store it opened) reaches the
other ranks by one broadcast, which carries rank 0's error too: every rank then fails with the same line instead
of waiting forever at a collective rank 0 never reaches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from glassloop.errors import ConfigError, DataError, GlassloopError

Value = TypeVar("Value")
_KINDS = {"ConfigError": ConfigError, "DataError": DataError}


def join_for_cli() -> bool:
    """Join torchrun's process group now (before gl.fit does), so --out can be agreed on; True when created."""
    from glassloop.core import distributed

    if not distributed.launched_by_torchrun():
        return False
    from glassloop.core.devices import resolve_device

    return distributed.join(distributed.device_for_rank(resolve_device("auto")))


def leave(created: bool) -> None:
    if created:
        from glassloop.core import distributed

        distributed.leave(created)


def from_rank_zero(decide: Callable[[], Value]) -> Value:
    """`decide()` on rank 0, its result (or its one-line error) on every rank; a plain call without torchrun."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return decide()
    payload: list[Any] = [None]
    failure: GlassloopError | None = None
    if dist.get_rank() == 0:
        try:
            payload = [("ok", decide())]
        except GlassloopError as error:
            failure = error
            payload = [("error", type(error).__name__, str(error))]
    dist.broadcast_object_list(payload, src=0)
    if failure is not None:
        raise failure
    if payload[0][0] == "error":
        raise _KINDS.get(payload[0][1], ConfigError)(payload[0][2])
    return payload[0][1]
