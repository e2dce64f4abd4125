"""LoopState (what callbacks see) and History (the single record of a run)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class History:
    """One dict per epoch, plus the best epoch and why training ended.

    Each record holds at least `epoch` (0-based), `train_loss`, `val_loss` (None without validation), `lr`,
    `grad_norm` (pre-clip global norm, epoch mean), `seconds`; extra metrics appear as `val_<name>`.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float | None = None
    stop_reason: str | None = None
    monitor: str = "val_loss"  # what best_epoch/best_val_loss follow (EarlyStopping's monitor when attached)
    mode: str = "min"
    signal: int | None = None  # SIGINT/SIGTERM number when a signal interrupted the run (CLI exit 128 + signal)
    step_path: str = "autograd"  # "autograd" (the lesson's loss.backward()) or "fused" (glassloop/core/fused.py)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[Any]:
        """`history["val_loss"]` is that column over epochs."""
        return [record.get(key) for record in self.records]

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        value = record.get(self.monitor)
        if value is None and self.monitor == "val_loss":
            value = record.get("train_loss")  # no validation data: the training loss is all there is
        if value is None or not math.isfinite(value):
            return
        better = self.best_val_loss is None or (value < self.best_val_loss if self.mode == "min"
                                                else value > self.best_val_loss)
        if better:
            self.best_val_loss = float(value)
            self.best_epoch = int(record["epoch"])

    def columns(self) -> list[str]:
        keys: list[str] = []
        for record in self.records:
            keys.extend(k for k in record if k not in keys)
        return keys

    def to_csv(self, path: str | Path | None = None) -> str:
        """The records as CSV; the `epoch` column is 1-based, as everything a person or a file sees."""
        columns = self.columns()
        text = csv_header(columns) + "".join(csv_row(record, columns) for record in self.records)
        if path is not None:
            _write_atomically(text, Path(path))
        return text

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.state_dict(), indent=2, default=float)
        if path is not None:
            _write_atomically(text, Path(path))
        return text

    def state_dict(self) -> dict[str, Any]:
        return {
            "records": [dict(r) for r in self.records],
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "stop_reason": self.stop_reason,
            "monitor": self.monitor,
            "mode": self.mode,
            "signal": self.signal,
            "step_path": self.step_path,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.records = [dict(r) for r in state["records"]]
        self.best_epoch = state["best_epoch"]
        self.best_val_loss = state["best_val_loss"]
        self.stop_reason = state["stop_reason"]
        self.monitor = state.get("monitor", "val_loss")
        self.mode = state.get("mode", "min")
        self.signal = state.get("signal")
        self.step_path = state.get("step_path", self.step_path)

    def plot(self, path: str | Path | None = None, **options: Any):
        """Loss curves (best epoch marked), LR and gradient-norm panels; see `glassloop.analysis.plots`."""
        from glassloop.analysis.plots import plot_history

        return plot_history(self, path, **options)

    def diagnose(self):
        """Read the learning curves; see `glassloop.analysis.diagnosis.diagnose`."""
        from glassloop.analysis.diagnosis import diagnose

        return diagnose(self)


def csv_header(columns: list[str]) -> str:
    return csv_row({column: column for column in columns}, columns, header=True)


def csv_row(record: dict[str, Any], columns: list[str], header: bool = False) -> str:
    """One line of history.csv (the one CSV writer: History.to_csv and the Checkpoint's per-epoch append)."""
    values = dict(record)
    if not header and values.get("epoch") is not None:
        values["epoch"] = shown_epoch(int(values["epoch"]))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if values.get(k) is None else values.get(k) for k in columns])
    return buffer.getvalue()


def _write_atomically(text: str, path: Path) -> None:
    from glassloop.core.checkpoint import (
        write_file,  # temp file, fsync, os.replace: never a half-written file
    )

    write_file(text.encode(), path)


@dataclass
class LoopState:
    """Everything a callback may read (and the few things it may set: `should_stop`, `stop_reason`)."""

    model: Any
    optimizer: Any
    scheduler: Any = None
    loss_fn: Any = None
    history: History = field(default_factory=History)
    config: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0  # 0-based index of the current (or next) epoch
    step: int = 0  # optimizer steps taken so far
    epochs: int = 0
    batch: Any = None
    batch_index: int = 0
    loss: Any = None  # the current batch's loss tensor (after backward it is still readable)
    grad_norm: Any = None  # pre-clip global gradient norm of the current step (a tensor)
    record: dict[str, Any] = field(default_factory=dict)  # the epoch record being filled
    record_keys: list[str] = field(default_factory=list)  # the keys every epoch record will have
    batcher: Any = None
    callbacks: list[Any] = field(default_factory=list)  # attached callbacks, in band order
    device: Any = None
    should_stop: bool = False
    stop_reason: str | None = None
    exception: BaseException | None = None
    resumed: bool = False
    # What the loop and the built-in callbacks share, as typed fields (never string keys):
    interrupted_by: int | None = None  # SIGINT/SIGTERM number once a signal asked the run to stop
    interrupt_reason: str | None = None  # set with interrupted_by; stop_reason stays for real decisions
    nonfinite: bool = False  # the non-finite guard stopped the run before a bad update
    partial_epoch: dict[str, Any] | None = None  # an epoch cut short by a signal (losses, norms, lr, seconds)
    restored_epoch: int | None = None  # the epoch whose weights EarlyStopping(restore_best) put back
    already_finished: bool = False  # resume found a run that had already finished
    checks: list[Any] = field(default_factory=list)  # findings of the runtime probes (fit(checks=True))
    extra: dict[str, Any] = field(default_factory=dict)  # for user callbacks only; glassloop never reads it

    @property
    def signal(self) -> int | None:
        """Deprecated spelling kept for user callbacks: the signal number, as `interrupted_by`."""
        return self.interrupted_by

    def final_stop_reason(self) -> str:
        """Why the run ended: what stopped it, or that it completed all its epochs."""
        return self.stop_reason or self.interrupt_reason or f"completed {self.epochs} epochs"

    def stop(self, reason: str) -> None:
        """Ask the loop to end after the current epoch (or step), saying why."""
        self.should_stop = True
        if self.stop_reason is None:
            self.stop_reason = reason


def shown_epoch(epoch: int | None) -> int | None:
    """The one epoch convention: 0-based in Python objects (History.records, best_epoch, LoopState.epoch),
    1-based wherever a person or a file sees it (console, history.csv, summary.json, MLflow steps and tags,
    TensorBoard steps, sweep.csv, diagnosis text and JSON, plots)."""
    return None if epoch is None else epoch + 1
