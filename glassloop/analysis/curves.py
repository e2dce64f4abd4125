"""Epoch records in, uniform curves out: `read_curves` (History, epoch dicts, dict of lists) and `load_history`
(a run's history.csv back into a `History`).

The epoch convention (glassloop/core/state.py `shown_epoch`): 0-based in Python objects, 1-based wherever a person
or a file sees it. `Curves.epochs` holds the numbers as shown, so every message and plot quotes them directly:

- a `History` counts from 0 in code: shown as epoch + 1;
- epoch dicts (or a dict of lists) whose first `epoch` is 0 are code records (`History.records`): shown + 1;
  otherwise the numbers are quoted as given (lesson 004's table lists epochs 1, 10, 20, ...); without `epoch`
  the rows are numbered 1..n;
- a history.csv is 1-based (what `History.to_csv` writes); a file whose first epoch is 0 was written by an
  older glassloop with 0-based numbers. `load_history` returns 0-based records either way.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glassloop.errors import DataError

NUMERIC_COLUMNS = ("epoch", "train_loss", "val_loss", "lr", "grad_norm", "seconds")


@dataclass
class Curves:
    """Epoch records made uniform: display epoch numbers plus one float-or-None list per column."""

    epochs: list[int | float]
    columns: dict[str, list[float | None]]
    best_epoch_hint: int | None = None  # History.best_epoch converted to a record index, if known
    stop_reason: str | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.epochs)

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(record indices, epoch numbers, values) where the column is present."""
        values = self.columns.get(key) or []
        index = np.array([i for i, v in enumerate(values) if v is not None], dtype=int)
        x = np.array([float(self.epochs[i]) for i in index], dtype=float)
        y = np.array([values[i] for i in index], dtype=float)
        return index, x, y


def read_curves(history_or_records: Any) -> Curves:
    """Accept a `History`, a list of epoch dicts, or a dict of per-epoch lists (the lessons' `history` dict)."""
    source = history_or_records
    from_history = hasattr(source, "records") and not isinstance(source, dict)
    records = _records(source, from_history)
    epochs = _shown_epochs(records, from_history)
    keys: list[str] = []
    for record in records:
        keys.extend(k for k in record if k not in keys and k != "epoch")
    columns: dict[str, list[float | None]] = {}
    for key in keys:
        values = [record.get(key) for record in records]
        if all(v is None or isinstance(v, str) and not is_number_text(v) for v in values):
            continue  # a text column (e.g. a note) is not a curve
        columns[key] = [None if v is None or v == "" else _number(v, key, i) for i, v in enumerate(values)]
    if not any(v is not None for key in ("train_loss", "val_loss") for v in columns.get(key, [])):
        raise DataError(
            f"no 'train_loss' or 'val_loss' values in the records (columns: {', '.join(keys) or 'none'}); "
            "each epoch dict needs at least 'train_loss'"
        )
    hint = None
    best = getattr(source, "best_epoch", None) if from_history else None
    if best is not None:
        hint = next((i for i, record in enumerate(records) if record.get("epoch") == best), None)
    stop_reason = getattr(source, "stop_reason", None) if from_history else None
    return Curves(epochs=epochs, columns=columns, best_epoch_hint=hint, stop_reason=stop_reason)


def _records(source: Any, from_history: bool) -> list[dict[str, Any]]:
    if from_history:
        records = list(source.records)
    elif isinstance(source, dict):
        lengths = {len(v) for v in source.values() if isinstance(v, (list, tuple))}
        if len(lengths) != 1:
            raise DataError(
                f"a dict of curves needs lists of equal length, got lengths {sorted(lengths)}; "
                "pass {'train_loss': [...], 'val_loss': [...]} or a list of epoch dicts"
            )
        count = lengths.pop()
        records = [{k: v[i] for k, v in source.items() if isinstance(v, (list, tuple))} for i in range(count)]
    elif isinstance(source, (list, tuple)):
        records = list(source)
    else:
        raise DataError(
            f"cannot diagnose a {type(source).__name__}; expected a History, a list of epoch dicts with "
            "'train_loss'/'val_loss', or a dict of lists"
        )
    if not records:
        raise DataError("no epochs to diagnose: the history is empty; train for at least one epoch")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(f"epoch record {i} is a {type(record).__name__}, expected a dict with 'train_loss'")
    return records


def _shown_epochs(records: list[dict[str, Any]], from_history: bool) -> list[int | float]:
    """The epoch numbers a person sees (see the module docstring for the rule)."""
    has_epoch = [record.get("epoch") is not None for record in records]
    if not any(has_epoch):
        return list(range(1, len(records) + 1))
    if not all(has_epoch):
        raise DataError("some epoch records have an 'epoch' and some do not; give it in all or none")
    given = [_number(record["epoch"], "epoch", i) for i, record in enumerate(records)]
    if any(b <= a for a, b in zip(given, given[1:])):
        raise DataError(f"epoch numbers must increase, got {[epoch_text(e) for e in given][:10]}")
    zero_based = from_history or given[0] == 0
    return [as_int(e + 1 if zero_based else e) for e in given]


def load_history(path: str | Path):
    """Read a run's `history.csv` (1-based `epoch` column; empty cell = None) back into a 0-based `History`.

    `path` is the CSV or a run directory holding it. The run's `summary.json`, when present, supplies the stop
    reason (so a run stopped by the non-finite guard is read as such); nothing else is needed (no checkpoint).
    """
    from glassloop.core.state import History

    path = _history_file(Path(path))
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {str(path)!r}: {error}") from error
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    if "train_loss" not in header and "val_loss" not in header:
        raise DataError(
            f"{str(path)!r} has no train_loss/val_loss column (header: {','.join(header) or 'empty'}); "
            "expected the columns History.to_csv writes: epoch,train_loss,val_loss,lr,grad_norm,seconds"
        )
    rows = [_csv_record(path, line, row, len(header)) for line, row in enumerate(reader, start=2)]
    if not rows:
        raise DataError(f"{str(path)!r} has a header but no epochs; was the run stopped before its first epoch?")
    # 1-based in the file; a first epoch of 0 marks a file an older glassloop wrote with 0-based numbers.
    shift = 0 if rows[0].get("epoch") == 0 else 1
    history = History(stop_reason=_stop_reason(path.parent / "summary.json"))
    for position, record in enumerate(rows):
        epoch = record.get("epoch")
        record["epoch"] = position if epoch is None else as_int(epoch - shift)
        history.append(record)
    return history


def _history_file(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"run directory {str(path)!r} does not exist; pass a directory made by 'glassloop fit'")
    if path.is_dir():
        if not (path / "history.csv").is_file():
            raise DataError(f"no history.csv in {str(path)!r}; pass a run directory made by 'glassloop fit'")
        return path / "history.csv"
    return path


def _csv_record(path: Path, line: int, row: dict[Any, Any], width: int) -> dict[str, Any]:
    if None in row or any(v is None for v in row.values()):
        raise DataError(f"{path}:{line}: expected {width} fields like the header, got a different count")
    record: dict[str, Any] = {}
    for key, cell in row.items():
        if cell == "":
            record[key] = None
        elif is_number_text(cell):
            record[key] = as_int(float(cell)) if key == "epoch" else float(cell)
        elif key in NUMERIC_COLUMNS or key.startswith("val_"):
            raise DataError(f"{path}:{line}: {key}={cell!r} is not a number")
        else:
            record[key] = cell
    return record


def _stop_reason(summary: Path) -> str | None:
    """`network.stop_reason` (or a top-level `stop_reason`) of a run's summary.json; None when unreadable."""
    try:
        data = json.loads(summary.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    network = data.get("network")
    reason = network.get("stop_reason") if isinstance(network, dict) else None
    reason = reason if reason is not None else data.get("stop_reason")
    return reason if isinstance(reason, str) else None


# ---------------------------------------------------------------------------------------------- numbers


def epoch_text(epoch: float) -> str:
    """An epoch number as people write it: 7, 1000000, 2.5 (never 1e+06)."""
    value = float(epoch)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def as_int(value: float) -> int | float:
    return int(value) if math.isfinite(float(value)) and float(value).is_integer() else value


def _number(value: Any, key: str, index: int) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"epoch record {index}: {key}={value!r} is not a number") from None


def is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
