"""`latest.pt` after every epoch, `best.pt` on improvement, and exact resume (lesson 004's two-file pattern).

Resume restores model, optimizer, scheduler, every RNG, the batcher's position (mid-epoch after a signal),
counters, History and every stateful callback, so an interrupted run continued with `resume=True` ends with
bitwise the same weights and History as the uninterrupted run (CPU, deterministic ops).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from glassloop.core.checkpoint import (
    FileWriter,
    envelope,
    load_checkpoint,
    pack,
    rng_states,
    set_rng_states,
    snapshot,
    unwrap,
)
from glassloop.core.distributed import is_main_process
from glassloop.errors import CheckpointError


def callback_keys(callbacks: list[Any]) -> dict[str, Any]:
    """Stable keys for stateful callbacks: class name + its index among callbacks of that class."""
    keys, seen = {}, {}
    for callback in callbacks:
        if not (callable(getattr(callback, "state_dict", None)) and callable(getattr(callback, "load_state_dict",
                                                                                     None))):
            continue
        name = type(callback).__name__
        seen[name] = seen.get(name, -1) + 1
        keys[f"{name}:{seen[name]}"] = callback
    return keys


class Checkpoint:
    band = "checkpoint"

    def __init__(self, run_dir: str | Path, resume: bool = False, save_best: bool = True,
                 plot: bool = True, every_seconds: float = 0.0) -> None:
        if isinstance(every_seconds, bool) or not isinstance(every_seconds, (int, float)) or not every_seconds >= 0:
            raise CheckpointError(f"Checkpoint every_seconds={every_seconds!r} must be a number >= 0")
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.save_best = save_best
        self.plot = plot
        # 0: latest.pt after every epoch. For epochs of a few milliseconds, a few seconds here bounds the cost; a
        # crash then resumes from an older epoch (still exactly). The last epoch, stops and signals always write.
        self.every_seconds = float(every_seconds)
        self.last_write = float("-inf")
        self.pending_best: dict[str, Any] | None = None  # the newest best epoch not yet on disk
        self._csv_columns: list[str] | None = None  # history.csv's header as last written
        self.writer: FileWriter | None = None

    @property
    def latest_path(self) -> Path:
        return self.run_dir / "latest.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    def on_fit_start(self, state: Any) -> None:
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise CheckpointError(f"run directory {self.run_dir} is a file; pass a directory path")
        if self.resume and self.latest_path.exists():
            self.restore(state, load_checkpoint(self.latest_path, kind="latest"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob(".*.pt.tmp-*"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        self.writer = FileWriter()

    def restore(self, state: Any, checkpoint: dict[str, Any]) -> None:
        self.check_same_run(state.config, checkpoint["config"])
        unwrap(state.model).load_state_dict(checkpoint["model"])
        state.optimizer.load_state_dict(checkpoint["optimizer"])
        if state.scheduler is not None and checkpoint["scheduler"] is not None:
            state.scheduler.load_state_dict(checkpoint["scheduler"])
        state.batcher.load_state_dict(checkpoint["batcher"])
        state.history.load_state_dict(checkpoint["history"])
        state.epoch, state.step = checkpoint["epoch"], checkpoint["step"]
        stateful = callback_keys(state.callbacks)
        for key, callback_state in checkpoint["callbacks"].items():
            if key in stateful:
                stateful[key].load_state_dict(callback_state)
        if checkpoint["partial_epoch"] is not None:
            state.partial_epoch = checkpoint["partial_epoch"]
        set_rng_states(checkpoint["rng"])
        state.resumed = True
        if checkpoint["finished"]:
            state.stop(state.history.stop_reason or "finished")
            state.already_finished = True
            print(f"Run in {self.run_dir} already finished ({state.history.stop_reason}); nothing to resume.")
        else:
            state.history.stop_reason = None  # it said "interrupted"; the run goes on
            state.history.signal = None

    # What must not change between a run and its resume (else "resume" silently trains something else).
    SAME_RUN_KEYS = ("model_class", "parameters", "loss", "optimizer", "batch_size", "shuffle", "seed", "train_size",
                     "scheduler", "compute_loss")

    def check_same_run(self, current: dict[str, Any], saved: dict[str, Any]) -> None:
        for key in self.SAME_RUN_KEYS:
            if key in saved and saved[key] != current.get(key):
                raise CheckpointError(
                    f"{self.latest_path} belongs to a run with {key}={saved[key]!r} but this fit has "
                    f"{key}={current.get(key)!r}; resume with the same settings, or use a new run directory")

    def save_latest(self, state: Any, finished: bool, partial_epoch: Any = None) -> None:
        scheduler = state.scheduler.state_dict() if state.scheduler is not None else None
        self.writer.submit(envelope("latest", **pack(dict(
            model=unwrap(state.model).state_dict(),
            optimizer=state.optimizer.state_dict(),
            scheduler=scheduler,
            rng=rng_states(),
            batcher=state.batcher.state_dict(),
            epoch=state.epoch if partial_epoch is not None else state.epoch + 1,
            step=state.step,
            # JSON strings: one pickled object instead of hundreds (load_checkpoint decodes them)
            history=json.dumps(state.history.state_dict()
                               | ({"stop_reason": state.final_stop_reason()} if finished else {})),
            callbacks={key: c.state_dict() for key, c in callback_keys(state.callbacks).items()},
            config=json.dumps(state.config, default=str),
            partial_epoch=partial_epoch,
            finished=finished,
        ))), self.latest_path)

    def on_epoch_end(self, state: Any) -> None:
        if not is_main_process():
            return  # under DDP every rank restores from the files, only rank 0 writes them
        record = state.record
        if self.save_best and state.history.best_epoch == record["epoch"]:
            # best.pt stays a plain dict: torch.load(path, weights_only=True)["model"] is a state_dict
            weights = unwrap(state.model).state_dict()  # copied only when its write may wait for a later epoch
            self.pending_best = envelope("best", model=snapshot(weights) if self.every_seconds else weights,
                                         epoch=record["epoch"], record=dict(record), monitor=state.history.monitor,
                                         config=state.config)
        self.append_history_row(state)
        stopping = state.should_stop
        interrupted = bool(state.interrupted_by)  # read after should_stop: a signal sets it first
        finished = (stopping and not interrupted) or record["epoch"] + 1 >= state.epochs
        now = time.monotonic()
        if not (finished or stopping or now - self.last_write >= self.every_seconds):
            return
        self.last_write = now
        # best.pt first: a kill between the two writes must not leave a latest.pt whose history names a best
        # epoch that best.pt never received (a resume would not write it again).
        self.write_pending_best()
        if not state.nonfinite:  # else keep the last good latest.pt: a resume would hit NaN again
            self.save_latest(state, finished=finished)

    def write_pending_best(self) -> None:
        if self.pending_best is not None:
            self.writer.submit(self.pending_best, self.best_path)
            self.pending_best = None

    def append_history_row(self, state: Any) -> None:
        """history.csv grows by one line an epoch (rewritten whole when the columns change, e.g. after a resume)."""
        path = self.run_dir / "history.csv"
        columns = state.history.columns()
        if self._csv_columns != columns or not path.exists():
            state.history.to_csv(path)
            self._csv_columns = columns
            return
        record = state.record
        with open(path, "a") as handle:
            handle.write(",".join("" if record.get(k) is None else str(record.get(k)) for k in columns) + "\n")

    def on_fit_end(self, state: Any) -> None:
        if not is_main_process():
            return
        self.write_pending_best()
        if state.partial_epoch is not None:  # interrupted mid-epoch: save the position to continue from
            self.save_latest(state, finished=False, partial_epoch=state.partial_epoch)
        self.close()
        if state.history.records:
            state.history.to_csv(self.run_dir / "history.csv")
            if self.plot:
                self._plot(state)

    def on_exception(self, state: Any) -> None:
        try:
            if self.writer is not None:
                self.write_pending_best()  # a completed epoch's weights: still the best, still worth keeping
            self.close()  # what was handed over before the error still lands on disk
        except OSError as error:  # the run's own error matters more; say what the disk did and go on
            print(f"glassloop: warning: a checkpoint write failed too: {error}", file=sys.stderr)

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.flush()
            finally:
                writer.close()

    def _plot(self, state: Any) -> None:
        try:
            state.history.plot(self.run_dir / "curves.png")
        except ImportError:  # plots module or matplotlib missing: the checkpoint matters more than the picture
            pass
