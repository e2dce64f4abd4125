"""Checkpoint files: one versioned format, sealed with a checksum, atomic writes, loads that can never run code.

`latest.pt` holds everything needed to continue a run bit for bit (model, optimizer, scheduler, RNG states, batcher
position, counters, History, stateful callbacks, config); `best.pt` holds the best epoch's weights and what is
needed to use them. Both are plain dicts of tensors and numbers, loaded with `torch.load(weights_only=True)`.

The seal (format version 2): `torch.save` writes a zip archive; glassloop puts `glassloop-sha256:<hex>` in the zip
comment, the last field of the archive, where the hex is the sha256 of every byte before the comment's length
field. torch (and any zip reader) ignores the comment, so `torch.load(path, weights_only=True)["model"]` keeps
working; `load_checkpoint` recomputes the digest and refuses a file whose bytes changed. See docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import pickle
import queue
import random
import stat
import struct
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassloop.errors import CheckpointError

FORMAT = "glassloop.core.checkpoint"
VERSION = 2  # 2: sealed with a sha256 (below); 1: written before the seal, still read (unverified)
READABLE_VERSIONS = (1, 2)
SEAL_MARK = b"glassloop-sha256:"
SEAL_LENGTH = len(SEAL_MARK) + 64  # the zip comment: mark + hex digest
END_RECORD = b"PK\x05\x06"  # zip end-of-central-directory record: 22 bytes + the comment


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
    """Serialise, seal and write atomically: a crash at any instant leaves the old file or the new one."""
    write_file(seal(serialize(payload)), Path(path))


def serialize(payload: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def seal(data: bytes) -> bytes:
    """`data` (torch.save's zip archive, which ends with an empty comment) with its sha256 as the zip comment."""
    if len(data) < 22 or data[-22:-18] != END_RECORD or data[-2:] != b"\0\0":
        raise CheckpointError("cannot seal a checkpoint: the serialised bytes are not a zip archive with an empty "
                              "comment (torch.save changed its format?); report this with your torch version")
    body = data[:-2]
    return body + struct.pack("<H", SEAL_LENGTH) + SEAL_MARK + hashlib.sha256(body).hexdigest().encode()


def seal_status(data: bytes) -> str:
    """'verified' (the seal matches every byte), 'absent' (no seal: written before version 2, or a damaged mark),
    or 'mismatch' (the bytes changed since they were sealed)."""
    mark = len(data) - SEAL_LENGTH
    if mark < 22 or data[mark:mark + len(SEAL_MARK)] != SEAL_MARK:
        return "absent"
    if data[mark - 22:mark - 18] != END_RECORD or data[mark - 2:mark] != struct.pack("<H", SEAL_LENGTH):
        return "mismatch"
    digest = hashlib.sha256(memoryview(data)[:mark - 2]).hexdigest().encode()
    return "verified" if hmac.compare_digest(digest, data[mark + len(SEAL_MARK):]) else "mismatch"


def temporary_path(path: Path) -> Path:
    """`.NAME.tmp-PID`: the PID tells a later cleanup whether its writer is still alive."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_file(data: bytes, path: str | Path) -> None:
    """Temporary file next to `path`, write, flush, fsync, `os.replace`: the previous file survives any crash.

    Never writes through a link: the temporary is created fresh (O_EXCL | O_NOFOLLOW, after removing whatever
    had its name), and `os.replace` swaps a symlink planted at `path` for the new file, leaving its target alone.
    """
    path = Path(path)
    temporary = temporary_path(path)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)  # our own leftover, or a link planted under our name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        with os.fdopen(os.open(temporary, flags, 0o666), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def previous_path(path: Path) -> Path:
    """latest.pt -> latest.prev.pt: the state one write earlier."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def keep_previous(path: Path) -> None:
    """Hard-link the current `path` as `previous_path(path)` before it is replaced.

    One rename makes the link appear, so `path` is never missing and the previous file is always a complete
    one; no bytes are copied (a filesystem without hard links gets a copy). A link at `path` is not followed.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return
    except FileNotFoundError:
        return
    previous = previous_path(path)
    link = temporary_path(previous)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    try:
        os.link(path, link, follow_symlinks=False)
    except OSError:  # no hard links here (some network and FAT filesystems)
        write_file(path.read_bytes(), previous)
        return
    os.replace(link, previous)
    # rename(2) does nothing when both names are already links to one file (the previous state is the current
    # one): the temporary name would stay behind.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this process: another Checkpoint's writer thread may be mid-write
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    except OSError:
        return True
    return True


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the `.NAME.tmp-PID` files of writers that died mid-write; a live process's files are left alone
    (another fit, a resume or a predict may be writing there right now)."""
    removed = []
    for candidate in directory.glob(".*.tmp-*"):
        pid = candidate.name.rsplit(".tmp-", 1)[1]
        if pid.isdigit() and not process_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
            removed.append(candidate)
    return removed


class FileWriter:
    """Writes files on one background thread, in order.

    The training thread only serialises; sealing (sha256 releases the GIL), the previous-file link, write, fsync
    and rename run here, so the loop does not pay for the disk. A kill at any instant leaves the previous complete
    file. `flush()` waits for every pending write and re-raises the first error one hit.
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
                    data, path, sealed, previous = job
                    if previous:
                        keep_previous(path)
                    write_file(seal(data) if sealed else data, path)
            except BaseException as error:  # noqa: BLE001 - re-raised on the training thread by flush()
                self.error = error
            finally:
                self.jobs.task_done()
        self.jobs.task_done()

    def submit(self, payload: dict[str, Any], path: Path, keep_previous: bool = False) -> None:
        """A checkpoint: serialised now, on the training thread (later steps may change the tensors)."""
        self.raise_error()  # a disk that failed last epoch fails the run now, not at its end
        self.jobs.put((serialize(payload), Path(path), True, keep_previous))

    def submit_bytes(self, data: bytes, path: Path) -> None:
        """Any other file of the run directory (history.csv), written atomically in the same order."""
        self.raise_error()
        self.jobs.put((data, Path(path), False, False))

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
    """Load a glassloop checkpoint safely (`weights_only=True`: tensors and plain data only, never code) after
    checking its sha256 seal.

    Raises a one-line `CheckpointError` naming the file and the fix for a missing, truncated, damaged (bytes
    changed since glassloop wrote them), foreign, wrong-version or code-carrying file.
    """
    path = Path(path)
    data = _read(path)
    status = seal_status(data)
    if status == "mismatch":
        raise CheckpointError(damaged(path, "its bytes do not match the sha256 seal written with it"))
    if not zipfile.is_zipfile(io.BytesIO(data)):  # torch.save writes a zip; a cut-off one has no central directory
        raise CheckpointError(f"checkpoint {path} is truncated or corrupted (not a complete torch zip archive); "
                              "resume from another checkpoint or start a fresh run")
    payload = _unpickle(path, data)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a glassloop checkpoint (no '{FORMAT}' marker); for a plain "
                              "state_dict use model.load_state_dict(torch.load(path, weights_only=True))")
    version = payload.get("version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(f"checkpoint {path} has format version {version!r}, this glassloop "
                              f"reads versions {', '.join(map(str, READABLE_VERSIONS))}; use the glassloop release "
                              "that wrote it")
    if version >= 2 and status != "verified":  # every version-2 file is sealed: a missing seal is damage
        raise CheckpointError(damaged(path, "its sha256 seal is missing or unreadable"))
    if "packed_tree" in payload:
        payload = {**{k: v for k, v in payload.items() if not k.startswith("packed_")}, **unpack(payload)}
    for key in ("history", "config"):  # stored as JSON text (cheaper to save than nested objects)
        if isinstance(payload.get(key), str):
            payload[key] = json.loads(payload[key])
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{path} is a {payload.get('kind')!r} checkpoint, expected {kind!r}")
    return payload


def _read(path: Path) -> bytes:
    """The file's bytes, read once (the seal is checked on exactly the bytes torch then loads)."""
    if not path.is_file():
        hint = ("best.pt appears at the first epoch whose monitored loss and weights are finite, so a run that "
                "diverged from its first epoch has none (lower the learning rate and train again)"
                if path.name == "best.pt" else "a run writes latest.pt after its first epoch")
        raise CheckpointError(f"checkpoint {path} does not exist; check the run directory ({hint})")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path} ({error.strerror or type(error).__name__}); "
                              "check its permissions and the disk") from None
    if not data:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); it was never written completely. "
                              "Delete it and resume from the other checkpoint or start a fresh run")
    return data


def _unpickle(path: Path, data: bytes) -> Any:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refused to load {path}: it carries Python objects or code that a weights-only load does not allow "
            f"({_unsupported(error)}). Only load checkpoints "
            "you trust; glassloop never executes code from a checkpoint") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError,
            struct.error) as error:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupted ({type(error).__name__}: "
                              f"{(str(error).splitlines() or [''])[0][:120]}); resume from another checkpoint or "
                              "start a fresh run") from None


def damaged(path: Path, why: str) -> str:
    """The one line for a file whose content changed after it was written, offering the previous good state."""
    text = f"checkpoint {path} is damaged: {why} (the disk, memory or a copy changed the file after glassloop wrote it)"
    previous = previous_path(path)
    if path.name == "latest.pt" and previous.is_file():
        try:
            epoch = load_checkpoint(previous, kind="latest")["epoch"]
        except CheckpointError:
            return f"{text}; {previous.name} is damaged too; start a fresh run"
        return (f"{text}; the previous good state {previous} ({epoch} epochs done) is intact: resume from it "
                f"after `mv {previous} {path}` (a resume from any epoch ends with the same weights)")
    return f"{text}; restore it from a copy, or train again"


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
