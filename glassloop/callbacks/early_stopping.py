"""Early stopping with patience (lesson 004): stop when the monitored value has not improved for `patience`
epochs, and (with `restore_best`) end with the best epoch's weights whether or not the stop fired."""

from __future__ import annotations

import math
from typing import Any

from glassloop.core.rules import improved, patience_reason
from glassloop.errors import ConfigError


class EarlyStopping:
    band = "monitors"

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int = 10, min_delta: float = 0.0,
                 restore_best: bool = True) -> None:
        if mode not in ("min", "max"):
            raise ConfigError(f"EarlyStopping mode={mode!r}; expected 'min' or 'max'")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"EarlyStopping patience={patience!r} must be an integer >= 1 (epochs to wait)")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not min_delta >= 0:
            raise ConfigError(f"EarlyStopping min_delta={min_delta!r} must be a number >= 0")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, float(min_delta)
        self.restore_best = restore_best
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_weights: dict[str, Any] | None = None
        # The epoch (0-based) where the patience rule fired and why. Kept even when a signal had already stopped
        # the run (state.stop keeps the first reason), so the Checkpoint saves that epoch as the run's end.
        self.stopped_epoch: int | None = None
        self.stopped_reason: str | None = None

    def improved(self, value: float) -> bool:
        return improved(value, self.best, self.mode, self.min_delta)

    def on_fit_start(self, state: Any) -> None:
        self.check_monitor(state.record_keys)  # before the first batch, not after a wasted epoch
        # A fresh count for every fit (a resuming Checkpoint restores the saved one after this: later band).
        self.best, self.best_epoch, self.wait, self.best_weights = None, None, 0, None
        self.stopped_epoch, self.stopped_reason = None, None

    def check_monitor(self, keys: list[str]) -> None:
        if keys and self.monitor not in keys:
            raise ConfigError(f"EarlyStopping monitor={self.monitor!r} is not in the epoch record; available: "
                              f"{', '.join(k for k in keys if k not in ('epoch', 'seconds'))}")

    def on_epoch_end(self, state: Any) -> None:
        record = state.record
        self.check_monitor(list(record))
        value = record[self.monitor]
        if value is None:
            raise ConfigError(f"EarlyStopping monitors {self.monitor!r} but it is None (no validation data); "
                              "pass val=... to fit or use monitor='train_loss'")
        if not math.isfinite(value):
            return
        if self.improved(value):
            self.best, self.best_epoch, self.wait = float(value), record["epoch"], 0
            if self.restore_best:  # a copy in memory; cheap next to an epoch for the models glassloop targets
                self.best_weights = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = record["epoch"]
            self.stopped_reason = patience_reason(self.monitor, self.patience, self.best, self.best_epoch)
            state.stop(self.stopped_reason)

    def on_fit_end(self, state: Any) -> None:
        # A signal that cut the run short leaves the live weights for the Checkpoint to save (it runs after this
        # band); a run that ended anyway (all epochs done, or this rule fired) ends with the best weights, signal
        # or not, as the uninterrupted run does.
        ended = not state.interrupted_by or self.stopped_epoch is not None or state.epoch >= state.epochs
        if self.restore_best and self.best_weights is not None and ended:
            state.model.load_state_dict(self.best_weights)
            state.restored_epoch = self.best_epoch

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "best_weights": self.best_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_weights = state["best_weights"]
