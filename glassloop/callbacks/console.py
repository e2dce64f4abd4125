"""The console table of lesson 004: `Epoch | Train Loss | Val Loss | LR | Grad Norm | Best`.

Short runs print every epoch; long runs print the first, every k-th, each new best and the last. Inside long
epochs a tqdm progress bar runs when stdout is a terminal. The diagnosis is printed at the end of the fit.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO


def _fmt(value: Any, width: int, spec: str = ".6f") -> str:
    """Fixed-point for everyday numbers; scientific notation past 1e5 or below 1e-4, so a loss of 2.9e+35
    (a blow-up) fits its column instead of printing 36 digits."""
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!s:>{width}}"
    if isinstance(value, float) and value != 0 and not 1e-4 <= abs(value) < 1e5 and spec.endswith("f"):
        return f"{value:>{width}.3e}"
    return f"{value:>{width}{spec}}"


def readable(value: float) -> str:
    """A number for a sentence: 6 significant digits at everyday magnitudes, scientific beyond."""
    return _fmt(value, 0).strip()


class Console:
    """Prints the epoch table (reporters band: runs after early stopping and the checkpoint have decided)."""

    band = "reporters"

    def __init__(self, every: int | None = None, progress: Any = "auto", diagnosis: bool = True,
                 stream: TextIO | None = None) -> None:
        self.every = every
        self.progress = progress
        self.diagnosis = diagnosis
        self.stream = stream
        self.bar: Any = None
        self.printed_header = False
        self.best_printed: float | None = None

    @property
    def out(self) -> TextIO:
        return self.stream or sys.stdout

    def print(self, text: str = "") -> None:
        if getattr(self, "run_bar", None) is not None:
            self.run_bar.write(text, file=self.out)  # the table scrolls above the run's bar
            return
        print(text, file=self.out, flush=True)

    def on_fit_start(self, state: Any) -> None:
        self.started = time.perf_counter()
        self.printed_header = False  # a Console reused for another fit prints its own table
        self.extra_keys: list[str] = []
        if state.resumed and not state.already_finished:
            self.print(f"Resuming at epoch {state.epoch + 1}/{state.epochs} (step {state.step}).")
        self.use_bar = self._want_bar(state)
        self.run_bar: Any = None
        if not self.use_bar and self._want_run_bar(state):  # many short epochs: one bar, epochs as the unit
            from tqdm.auto import tqdm

            self.run_bar = tqdm(total=state.epochs, initial=state.epoch, unit="epoch", desc="fit", file=self.out)

    def _terminal(self) -> bool:
        return bool(getattr(self.out, "isatty", lambda: False)())

    def _want_bar(self, state: Any) -> bool:
        if self.progress is False or self.progress is None:
            return False
        if self.progress is True:
            return len(state.batcher) >= 200 or state.epochs < 20
        # auto: only on a terminal (never in CI logs or piped output), when an epoch is worth watching
        return self._terminal() and len(state.batcher) >= 200

    def _want_run_bar(self, state: Any) -> bool:
        if self.progress is False or self.progress is None:
            return False
        return (self.progress is True or self._terminal()) and state.epochs >= 20

    def on_epoch_start(self, state: Any) -> None:
        if self.use_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(state.batcher), desc=f"epoch {state.epoch + 1}", leave=False, file=self.out)

    reads_step = False  # its per-batch hook only advances a progress bar: the fast step paths stay on

    def on_batch_end(self, state: Any) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _header(self, record: dict[str, Any]) -> None:
        self.extra_keys = [k for k in record if k.startswith("val_") and k != "val_loss"]
        extras = "".join(f" | {k:>10}" for k in self.extra_keys)
        header = (f"{'Epoch':>6} | {'Train Loss':>12} | {'Val Loss':>10} | {'LR':>9} | {'Grad Norm':>9}"
                  f"{extras} | Best")
        self.print(header)
        self.print("-" * len(header))
        self.printed_header = True

    def _show(self, state: Any, is_best: bool) -> bool:
        epoch, epochs = state.epoch, state.epochs
        every = self.every or max(1, epochs // 10) if epochs > 20 else 1
        return epoch == 0 or epoch == epochs - 1 or (epoch + 1) % every == 0 or is_best or state.should_stop

    def on_epoch_end(self, state: Any) -> None:
        self._close_bar()
        if self.run_bar is not None:
            self.run_bar.update(1)
        record = state.record
        is_best = state.history.best_epoch == record["epoch"]
        if not self.printed_header:
            self._header(record)
        if not self._show(state, is_best):
            return
        extras = "".join(f" | {_fmt(record.get(k), 10)}" for k in self.extra_keys)
        self.print(f"{record['epoch'] + 1:>6} | {_fmt(record['train_loss'], 12)} | {_fmt(record['val_loss'], 10)}"
                   f" | {_fmt(record['lr'], 9, '.2e')} | {_fmt(record['grad_norm'], 9, '.3f')}{extras} | "
                   f"{' *' if is_best else ''}")

    def _close_run_bar(self) -> None:
        if getattr(self, "run_bar", None) is not None:
            self.run_bar.close()
            self.run_bar = None

    def on_fit_end(self, state: Any) -> None:
        self._close_bar()
        self._close_run_bar()
        history = state.history
        seconds = time.perf_counter() - self.started
        if history.best_epoch is not None:
            what = "val loss" if history.records and history.records[0].get("val_loss") is not None else "train loss"
            self.print(f"\nBest {what}: {readable(history.best_val_loss)} at epoch {history.best_epoch + 1}")
        self.print(f"Stopped: {history.stop_reason} ({seconds:.1f} s, {state.step} steps)")
        if self.diagnosis and history.records:
            try:
                from glassloop.analysis.diagnosis import diagnose
            except ImportError:  # the diagnosis module is optional for the console
                return
            from glassloop.callbacks.checkpoint import Checkpoint

            checkpoints = [c for c in state.callbacks if isinstance(c, Checkpoint)]
            best = any(c.best_path.exists() for c in checkpoints) if checkpoints else None
            self.print(str(diagnose(history, best_checkpoint=best)))

    def on_exception(self, state: Any) -> None:
        self._close_bar()
        self._close_run_bar()
