"""Which files the doctor checks: the files named, and the `*.py` files inside named directories (recursively,
skipping hidden folders, virtual environments and build output)."""

from __future__ import annotations

import os
from pathlib import Path

from glassloop.errors import DataError

SKIPPED = {"venv", "env", "site-packages", "__pycache__", "node_modules", "build", "dist"}


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED or name.endswith(".egg-info")


def python_files(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _skipped(d) and not (Path(root) / d / "pyvenv.cfg").exists())
        found += [Path(root) / f for f in sorted(files) if f.endswith(".py")]
    return found


def expand(paths: list[str]) -> list[Path]:
    """Files to check; a directory without any `*.py` file is bad input (DataError, one line)."""
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            inside = python_files(path)
            if not inside:
                raise DataError(f"cannot check {name!r}: the directory holds no *.py files (hidden folders and "
                                "virtual environments are skipped); expected a Python script or a folder of them")
            out += inside
        else:
            out.append(path)   # check_file says why when it is missing or unreadable
    return out
