"""The run directory and output files: one writer at a time, nothing half-written, no stale temporaries.

    RunLock(dir, command)     an fcntl.flock on `dir/.glassloop.lock`, held for the whole life of fit, resume and
                              predict --out; the kernel drops it when its process dies, so a killed run never blocks
    clean_temporaries(dir)    remove `.NAME.tmp-PID` / `.NAME.probe-PID` files whose PID is dead (never a live one)
    check_new_run_dir(out)    --out is new (or empty) and creatable; an existing run is never touched
    check_output_file / write_csv   an output CSV checked before any work, then written atomically
"""

from __future__ import annotations

import fcntl
import mmap
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from glassloop.errors import ConfigError, one_line

LOCK_NAME = ".glassloop.lock"
_TEMPORARY = re.compile(r"^\..+\.(?:tmp|probe)-(\d+)$")


def os_reason(error: OSError) -> str:
    """'No space left on device: /path' for a message (never a multi-line repr)."""
    reason = error.strerror or one_line(str(error)) or type(error).__name__
    return f"{reason}: {str(error.filename)[:100]}" if error.filename else reason


# ----------------------------------------------------------------------------------------------- lock
def _lock_holder(path: Path) -> int | None:
    """The PID holding an flock on `path`, from /proc/locks (Linux); None where the system does not say."""
    try:
        inode = path.stat().st_ino
        with open("/proc/locks", encoding="ascii") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].split(":")[-1] == str(inode):
                    return int(parts[4])
    except (OSError, ValueError):
        return None
    return None


class RunLock:
    """One writer per run directory. `with RunLock(dir, "glassloop fit"):` or `acquire()` / `release()`.

    The lock file is opened without following a symlink and never rewritten, so taking the lock changes nothing
    in the directory a reader can see (a finished run stays byte-for-byte and mtime-for-mtime the same)."""

    def __init__(self, run_dir: Path, command: str) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.command = command
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as error:
            raise ConfigError(f"cannot lock the run directory {str(self.path.parent)!r} ({os_reason(error)}); expected "
                              f"a writable directory without a symlink at {LOCK_NAME}; fix it, then run "
                              f"'{self.command}' again") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(self.path)
            os.close(fd)
            who = f"process {holder}" if holder is not None else "another process"
            raise ConfigError(f"the run directory {str(self.path.parent)!r} is in use by {who} (a glassloop fit, "
                              "resume or predict --out); expected one writer at a time; wait for it to finish"
                              f"{f' or stop it (kill {holder})' if holder is not None else ''}, then run "
                              f"'{self.command}' again") from None
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_temporaries(run_dir: Path) -> list[str]:
    """Remove temporaries (`.NAME.tmp-PID`, `.NAME.probe-PID`) left by dead processes; a live writer's stay."""
    removed = []
    try:
        entries = list(run_dir.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


# ----------------------------------------------------------------------------------------------- --out
def first_missing(out: Path) -> Path | None:
    """The topmost directory that `out.mkdir(parents=True)` would create (None when --out exists)."""
    path, missing = out.absolute(), None
    while not path.exists():
        missing = path
        if path.parent == path:
            break
        path = path.parent
    return missing


def discard_run(out: Path, created: Path | None) -> None:
    """Remove what a failed start left: the directories it created, or the contents of a reused empty --out."""
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        return
    try:
        children = list(out.iterdir())
    except OSError:
        return
    for child in children:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def run_contents(out: Path) -> list[Path]:
    """What a directory holds besides the lock file and dead processes' temporaries (an empty --out may hold
    those after a kill in the first milliseconds)."""
    clean_temporaries(out)
    return [child for child in out.iterdir() if child.name != LOCK_NAME]


def check_new_run_dir(out: Path) -> None:
    """--out must be new (or an empty directory) and creatable; an existing run is never touched."""
    try:
        if out.exists():
            if not out.is_dir():
                raise ConfigError(f"--out {str(out)!r} exists and is not a directory; expected a new directory; "
                                  "choose another --out")
            if run_contents(out):
                raise ConfigError(f"--out {str(out)!r} already exists and is not empty; expected a new run "
                                  f"directory; choose another --out, or run 'glassloop resume {out}' to continue "
                                  "that run")
        ancestor = out.absolute().parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        writable = ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK)
    except OSError as error:  # e.g. a name too long for the file system
        raise ConfigError(f"--out {str(out)!r} cannot be used ({os_reason(error)}); expected a directory path; "
                          "choose another --out") from None
    if not writable:
        raise ConfigError(f"--out {str(out)!r} cannot be created ({str(ancestor)!r} is not a writable directory); "
                          "expected a writable location; choose another --out")


def check_output_file(value: str, flag: str = "--out") -> Path:
    """An output file that can be written atomically, checked before any work: not empty, not a directory or a
    device, in an existing directory where a file can be created (probed, so /proc or a read-only mount is
    found now, not after the work)."""
    if not value.strip():
        raise ConfigError(f"{flag} is empty; expected a file path such as predictions.csv; fix {flag}")
    path = Path(value)
    try:
        if path.is_dir():
            raise ConfigError(f"{flag} {value!r} is a directory; expected a file path such as "
                              f"{str(path / 'out.csv')!r}; fix {flag}")
        if path.exists() and not path.is_file():
            raise ConfigError(f"{flag} {value!r} is not a regular file (a device, pipe or socket); expected a file "
                              f"path; fix {flag}" + (" (leave it out to write to standard output)"
                                                     if flag == "--out" else ""))
        if not path.absolute().parent.is_dir():
            raise ConfigError(f"{flag} {value!r}: directory {str(path.absolute().parent)!r} does not exist; expected "
                              f"a file in an existing directory; create it or fix {flag}")
        probe = path.with_name(f".{path.name}.probe-{os.getpid()}")
        with open(probe, "xb"):
            pass
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"{flag} {value!r} cannot be written ({os_reason(error).split(': ')[0]} when creating a "
                          f"file in {str(path.absolute().parent)[:100]!r}); expected a file path in a writable "
                          f"directory; fix {flag}") from None
    return path


def write_output_file(data: Any, path: Path, flag: str = "--out") -> None:
    """Atomically, through glassloop.core.checkpoint.write_file; an OSError is one line and leaves no file."""
    from glassloop.core import checkpoint

    try:
        checkpoint.write_file(data, path)
    except OSError as error:
        raise ConfigError(f"could not write {flag} {str(path)!r} ({os_reason(error)}); nothing was written; "
                          f"expected a writable disk with free space; free space or choose another {flag}") from None


def write_csv(frames: Iterable[pd.DataFrame], target: Path | None, flag: str = "--out") -> int:
    """The one CSV writer: chunks (one header) to standard output as they come, or to `target` atomically.

    For a file, the chunks are spooled to an unnamed temporary file beside it (gone with the process, whatever
    happens) and handed to `write_file` as a memory map, so memory stays flat for a streamed table."""
    if target is None:
        return _write_stdout(frames)
    rows = 0
    try:
        with tempfile.TemporaryFile(dir=target.absolute().parent) as spool:
            for frame in frames:
                spool.write(frame.to_csv(index=False, header=rows == 0).encode("utf-8"))
                rows += len(frame)
            spool.flush()
            if spool.tell() == 0:
                write_output_file(b"", target, flag)
                return rows
            with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                write_output_file(mapped, target, flag)
    except OSError as error:
        raise ConfigError(f"could not write {flag} {str(target)!r} ({os_reason(error)}); nothing was written; "
                          f"expected a writable disk with free space; free space or choose another {flag}") from None
    return rows


def _write_stdout(frames: Iterable[pd.DataFrame]) -> int:
    rows = 0
    try:
        for frame in frames:
            frame.to_csv(sys.stdout, index=False, header=rows == 0)
            rows += len(frame)
        sys.stdout.flush()
    except BrokenPipeError:  # `glassloop predict ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return rows
