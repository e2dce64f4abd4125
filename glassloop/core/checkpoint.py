"""Checkpoint files: one versioned format, atomic writes, and loads that can never run code.

`latest.pt` holds everything needed to continue a run bit for bit (model, optimizer, scheduler, RNG states, batcher
position, counters, History, stateful callbacks, config); `best.pt` holds the best epoch's weights and what is
needed to use them. Both are plain dicts of tensors and numbers, loaded with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import queue
import random
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassloop.errors import CheckpointError

FORMAT = "glassloop.core.checkpoint"
VERSION = 1


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP/DataParallel (`.module`) or torch.compile (`._orig_mod`) wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None) or (
            model.module if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel))
            else None)
        if inner is None:
            return model
        model = inner


def snapshot(value: Any) -> Any:
    """A copy of a nested dict/list/tuple with every tensor cloned (training goes on mutating the originals)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return type(value)((key, snapshot(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(item) for item in value)
    return value


def pack(payload: dict[str, Any]) -> dict[str, Any]:
    """Gather every tensor of a nested payload into one flat buffer per dtype.

    `torch.save` spends ~60 us per tensor on pickling machinery; a checkpoint of a small model holds ~35 tensors
    (weights, Adam moments, RNG states), so packing them cuts the per-epoch cost several-fold.
    """
    tensors: list[torch.Tensor] = []

    def visit(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            tensors.append(value)
            return {"__tensor__": len(tensors) - 1}
        if isinstance(value, dict):
            return {key: visit(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(visit(item) for item in value)
        return value

    tree = visit(payload)
    groups: dict[str, list[torch.Tensor]] = {}
    sizes: dict[str, int] = {}
    index = []
    for tensor in tensors:
        key = str(tensor.dtype).removeprefix("torch.")
        flat = tensor.detach().reshape(-1).cpu()
        index.append((key, sizes.get(key, 0), flat.numel(), tuple(tensor.shape)))
        groups.setdefault(key, []).append(flat)
        sizes[key] = sizes.get(key, 0) + flat.numel()
    buffers = {key: torch.cat(parts) for key, parts in groups.items()}
    return {"packed_tree": tree, "packed_index": index, "packed_buffers": buffers}


def unpack(packed: dict[str, Any]) -> Any:
    buffers, index = packed["packed_buffers"], packed["packed_index"]

    def visit(value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1 and "__tensor__" in value:
                key, offset, numel, shape = index[value["__tensor__"]]
                return buffers[key][offset:offset + numel].view(shape).clone()
            return {key: visit(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(visit(item) for item in value)
        return value

    return visit(packed["packed_tree"])


def atomic_save(payload: dict[str, Any], path: str | Path) -> None:
    """Write to a temporary file in the same directory, flush, fsync, then `os.replace` over `path`.

    A crash at any instant leaves either the old file or the new one, never a half-written one.
    """
    write_file(serialize(payload), Path(path))


def serialize(payload: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def write_file(data: bytes, path: Path) -> None:
    """Temporary file next to `path`, write, flush, fsync, `os.replace`: the previous file survives any crash."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


class FileWriter:
    """Writes serialised checkpoints on one background thread, in order.

    Only system calls run there (write, fsync, rename release the GIL), so the training loop pays for serialising,
    not for the disk. A kill at any instant leaves the previous complete file. `flush()` waits for every pending
    write and re-raises the first error one hit.
    """

    def __init__(self) -> None:
        self.jobs: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="glassloop-checkpoint-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                if self.error is None:
                    write_file(*job)
            except BaseException as error:  # noqa: BLE001 - re-raised on the training thread by flush()
                self.error = error
            finally:
                self.jobs.task_done()
        self.jobs.task_done()

    def submit(self, payload: dict[str, Any], path: Path) -> None:
        self.raise_error()  # a disk that failed last epoch fails the run now, not at its end
        # serialised now, on the training thread: later steps may change the tensors
        self.jobs.put((serialize(payload), path))

    def flush(self) -> None:
        self.jobs.join()
        self.raise_error()

    def raise_error(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Load a glassloop checkpoint safely (`weights_only=True`: tensors and plain data only, never code).

    Raises a one-line `CheckpointError` naming the file and the fix for a missing, truncated, corrupted, foreign,
    wrong-version or code-carrying file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the run directory "
                              "(a run writes latest.pt after its first epoch)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); it was never written completely. "
                              "Delete it and resume from the other checkpoint or start a fresh run")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut-off one has no central directory
        raise CheckpointError(f"checkpoint {path} is truncated or corrupted (not a complete torch zip archive); "
                              "resume from another checkpoint or start a fresh run")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refused to load {path}: it carries Python objects or code that a weights-only load does not allow "
            f"({_unsupported(error)}). Only load checkpoints "
            "you trust; glassloop never executes code from a checkpoint") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupted ({type(error).__name__}: "
                              f"{str(error).splitlines()[0][:120]}); resume from another checkpoint or start "
                              "a fresh run") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a glassloop checkpoint (no '{FORMAT}' marker); for a plain "
                              "state_dict use model.load_state_dict(torch.load(path, weights_only=True))")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {payload.get('version')!r}, this glassloop "
                              f"reads version {VERSION}; use the glassloop release that wrote it")
    if "packed_tree" in payload:
        payload = {**{k: v for k, v in payload.items() if not k.startswith("packed_")}, **unpack(payload)}
    for key in ("history", "config"):  # stored as JSON text (cheaper to save than nested objects)
        if isinstance(payload.get(key), str):
            payload[key] = json.loads(payload[key])
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{path} is a {payload.get('kind')!r} checkpoint, expected {kind!r}")
    return payload


def _unsupported(error: Exception) -> str:
    """The line of torch's weights-only error that names the refused global, else a short summary."""
    lines = [line.strip() for line in str(error).splitlines() if "Unsupported" in line or "global" in line.lower()]
    return (lines[0].split(". Please")[0] if lines else "unpickling refused")[:160]


def rng_states() -> dict[str, Any]:
    """python, numpy and torch (CPU and CUDA) generator states as tensors and plain data."""
    version, internal, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    # The Mersenne state travels as one tensor, not 625 pickled ints: torch.save's cost is per pickled object.
    return {
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal.tolist()), gauss))
    name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def envelope(kind: str, **content: Any) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "kind": kind, **content}
