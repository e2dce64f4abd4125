"""`latest.pt` after every epoch, `best.pt` on improvement, and exact resume (lesson 004's two-file pattern).

Resume restores model, optimizer, scheduler, every RNG, the batcher's position (mid-epoch after a signal),
counters, History and every stateful callback, so an interrupted run continued with `resume=True` ends with
bitwise the same weights and History as the uninterrupted run (CPU, deterministic ops). A run that completed all
its epochs is extended when `fit` asks for more, exactly when its schedule does not depend on the total (see
docs/reliability.md). Every file is written atomically, sealed `.pt` files first, and never through a link.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from glassloop.core.checkpoint import (
    FileWriter,
    envelope,
    load_checkpoint,
    pack,
    remove_stale_temporaries,
    rng_states,
    set_rng_states,
    snapshot,
    unwrap,
    write_file,
)
from glassloop.core.distributed import is_main_process
from glassloop.core.state import csv_header, csv_row
from glassloop.errors import CheckpointError, one_line

# Scheduler state that moves as training goes on; every other entry is a setting fixed when it was built.
MOVING_SCHEDULER_KEYS = frozenset({"last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step",
                                   "_is_initial", "best", "num_bad_epochs", "cooldown_counter", "T_cur", "T_i"})
# Named schedules whose rule is a closure over the total steps: nothing in their state shows the horizon.
HORIZON_CLOSURES = ("warmup_cosine",)


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


def finite_weights(weights: dict[str, Any]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in weights.values()
               if isinstance(t, torch.Tensor) and t.is_floating_point())


def setting_difference(fresh: Any, saved: Any, where: str = "") -> str | None:
    """The first fixed setting of a scheduler state that differs between this fit and the saved run."""
    if isinstance(fresh, dict) and isinstance(saved, dict):
        for key in sorted(set(fresh) | set(saved), key=lambda k: (str(k).startswith("_"), str(k))):  # public first
            if key not in MOVING_SCHEDULER_KEYS:
                found = setting_difference(fresh.get(key), saved.get(key), f"{where}{key}")
                if found:
                    return found
        return None
    if isinstance(fresh, (list, tuple)) and isinstance(saved, (list, tuple)) and len(fresh) == len(saved):
        for index, (a, b) in enumerate(zip(fresh, saved)):
            found = setting_difference(a, b, f"{where}[{index}]")
            if found:
                return found
        return None
    return None if fresh == saved else f"{where}: {saved!r} saved, {fresh!r} now"


class Checkpoint:
    band = "checkpoint"

    def __init__(self, run_dir: str | Path, resume: bool = False, save_best: bool = True,
                 plot: bool = True, every_seconds: float = 0.0, keep_previous: bool = True) -> None:
        if isinstance(every_seconds, bool) or not isinstance(every_seconds, (int, float)) or not every_seconds >= 0:
            raise CheckpointError(f"Checkpoint every_seconds={every_seconds!r} must be a number >= 0")
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.save_best = save_best
        self.plot = plot
        # 0: latest.pt after every epoch. For epochs of a few milliseconds, a few seconds here bounds the cost; a
        # crash then resumes from an older epoch (still exactly). The last epoch, stops and signals always write.
        self.every_seconds = float(every_seconds)
        # latest.prev.pt: the state one write earlier, hard-linked before latest.pt is replaced (no bytes copied)
        self.keep_previous = keep_previous
        self.last_write = float("-inf")
        self.pending_best: dict[str, Any] | None = None  # the newest best epoch not yet on disk
        self.csv: tuple[list[str], str, int] | None = None  # history.csv as last written: columns, text, rows
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
        if self.run_dir.is_dir():
            remove_stale_temporaries(self.run_dir)  # left by a process killed mid-write (live writers' kept)
        self.last_write, self.pending_best, self.csv = float("-inf"), None, None  # a fresh start for every fit
        if self.resume and self.latest_path.exists():
            self.restore(state, load_checkpoint(self.latest_path, kind="latest"))  # damaged: one line, no start
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = FileWriter()

    # -- resume ----------------------------------------------------------------------------------------------

    def restore(self, state: Any, checkpoint: dict[str, Any]) -> None:
        self.check_same_run(state.config, checkpoint["config"])
        done, finished = checkpoint["epoch"], checkpoint["finished"]
        ended = checkpoint.get("ended") or (
            "completed" if str(checkpoint["history"].get("stop_reason")).startswith("completed ") else "stopped")
        extend = finished and ended == "completed" and state.epochs > done
        if extend or not finished:  # training goes on: to the same horizon, or one its schedule allows
            self.check_epochs(state, checkpoint)
        self.load_into(state, checkpoint)
        state.resumed = True
        if not finished:
            state.history.stop_reason = None  # it said "interrupted"; the run goes on
            state.history.signal = None
        elif extend:
            state.history.stop_reason = None
            state.history.signal = None
            print(f"Run in {self.run_dir} completed {done} epochs; extending it to {state.epochs}.")
        else:
            reason = state.history.stop_reason or "finished"
            state.stop(reason)
            state.already_finished = True
            state.resumed = False  # nothing resumes: no "Resuming at epoch 151/150"
            if state.epochs > done:
                print(f"Run in {self.run_dir} already finished ({reason}); only a run that completed all its "
                      f"epochs is extended, so epochs={state.epochs} does not continue it; train longer in a new "
                      "run directory.")
            else:
                print(f"Run in {self.run_dir} already finished ({reason}); nothing to resume.")

    def load_into(self, state: Any, checkpoint: dict[str, Any]) -> None:
        """Everything latest.pt holds, into this fit's pieces; a file from another run is one line."""
        try:
            unwrap(state.model).load_state_dict(checkpoint["model"])
            state.optimizer.load_state_dict(checkpoint["optimizer"])
            if state.scheduler is not None and checkpoint["scheduler"] is not None:
                state.scheduler.load_state_dict(checkpoint["scheduler"])
            state.batcher.load_state_dict(checkpoint["batcher"])
            stateful = callback_keys(state.callbacks)
            for key, callback_state in checkpoint["callbacks"].items():
                if key in stateful:
                    stateful[key].load_state_dict(callback_state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as error:
            raise CheckpointError(
                f"{self.latest_path} does not fit this fit ({type(error).__name__}: {one_line(str(error))[:160]}); "
                "it belongs to another run or model; resume with the model and settings that wrote it, or use a "
                "new run directory") from None
        state.history.load_state_dict(checkpoint["history"])
        state.epoch, state.step = checkpoint["epoch"], checkpoint["step"]
        if checkpoint["partial_epoch"] is not None:
            state.partial_epoch = checkpoint["partial_epoch"]
        set_rng_states(checkpoint["rng"])

    # What must not change between a run and its resume (else "resume" silently trains something else).
    SAME_RUN_KEYS = ("model_class", "parameters", "loss", "optimizer", "batch_size", "shuffle", "seed", "train_size",
                     "scheduler", "compute_loss")

    def check_same_run(self, current: dict[str, Any], saved: dict[str, Any]) -> None:
        for key in self.SAME_RUN_KEYS:
            if key in saved and saved[key] != current.get(key):
                raise CheckpointError(
                    f"{self.latest_path} belongs to a run with {key}={saved[key]!r} but this fit has "
                    f"{key}={current.get(key)!r}; resume with the same settings, or use a new run directory")

    def check_epochs(self, state: Any, checkpoint: dict[str, Any]) -> None:
        """Training on to another total than the saved run's is exact only when the schedule ignores the total."""
        done, partial = checkpoint["epoch"], checkpoint["partial_epoch"] is not None
        if done > state.epochs or (partial and done >= state.epochs):
            raise CheckpointError(f"{self.latest_path} has trained {done + partial} epochs already, more than "
                                  f"epochs={state.epochs}; resume with epochs>={done + partial} (it was started "
                                  f"with epochs={checkpoint['config'].get('epochs')})")
        saved_epochs = checkpoint["config"].get("epochs")
        if saved_epochs in (None, state.epochs) or state.scheduler is None or checkpoint["scheduler"] is None:
            return
        name = checkpoint["config"].get("scheduler")
        difference = ("its rule spreads warm-up and cosine over the total steps" if name in HORIZON_CLOSURES
                      else setting_difference(state.scheduler.state_dict(), checkpoint["scheduler"]))
        if difference:
            raise CheckpointError(
                f"cannot continue {self.latest_path} from epochs={saved_epochs} to epochs={state.epochs}: its "
                f"{name} schedule is sized by the total epochs ({difference}), so the result would not equal a "
                f"{state.epochs}-epoch run; train a new run directory with epochs={state.epochs}, or use "
                "scheduler=None or 'plateau' (or a schedule that ignores the total) for runs you mean to extend")

    # -- saving ----------------------------------------------------------------------------------------------

    def save_latest(self, state: Any, finished: bool, partial_epoch: Any = None,
                    ending: tuple[str, str] | None = None) -> None:
        scheduler = state.scheduler.state_dict() if state.scheduler is not None else None
        reason, ended = ending or (state.final_stop_reason(), "stopped" if state.stop_reason else "completed")
        self.writer.submit(envelope("latest", **pack(dict(
            model=unwrap(state.model).state_dict(),
            optimizer=state.optimizer.state_dict(),
            scheduler=scheduler,
            rng=rng_states(),
            batcher=state.batcher.state_dict(),
            epoch=state.epoch if partial_epoch is not None else state.epoch + 1,
            step=state.step,
            # JSON strings: one pickled object instead of hundreds (load_checkpoint decodes them)
            history=json.dumps(state.history.state_dict() | ({"stop_reason": reason} if finished else {})),
            callbacks={key: c.state_dict() for key, c in callback_keys(state.callbacks).items()},
            config=json.dumps(state.config, default=str),
            partial_epoch=partial_epoch,
            finished=finished,
            ended=ended if finished else None,  # "completed" all epochs (extendable) or "stopped" early
        ))), self.latest_path, keep_previous=self.keep_previous)

    def on_epoch_end(self, state: Any) -> None:
        if not is_main_process():
            return  # under DDP every rank restores from the files, only rank 0 writes them
        record = state.record
        if self.save_best and state.history.best_epoch == record["epoch"]:
            self.keep_best(state, record)
        stopping = state.should_stop
        reason = self.stop_reason_besides_signal(state)  # read after should_stop: a signal sets that first
        finished = reason is not None or record["epoch"] + 1 >= state.epochs
        now = time.monotonic()
        if not (finished or stopping or now - self.last_write >= self.every_seconds):
            return
        self.last_write = now
        self.write_history(state)
        # best.pt first: a kill between the two writes must not leave a latest.pt whose history names a best
        # epoch that best.pt never received (a resume would not write it again).
        self.write_pending_best()
        if not state.nonfinite:  # else keep the last good latest.pt: a resume would hit NaN again
            ending = (reason, "stopped") if reason else (f"completed {state.epochs} epochs", "completed")
            self.save_latest(state, finished=finished, ending=ending)

    @staticmethod
    def stop_reason_besides_signal(state: Any) -> str | None:
        """Why the run ends at this epoch whether or not a signal came: a signal only sets `interrupt_reason`,
        so `stop_reason` is a real decision (early stopping's, a user callback's). A signal alone is None, so a
        run signalled in its last or its early-stopping epoch is saved as finished, as if nothing happened."""
        return state.stop_reason

    def keep_best(self, state: Any, record: dict[str, Any]) -> None:
        """best.pt stays a plain dict (torch.load(path, weights_only=True)["model"] is a state_dict) and never
        holds non-finite weights: such an epoch is not kept, whatever its monitored value."""
        weights = unwrap(state.model).state_dict()
        if not finite_weights(weights):
            print(f"glassloop: warning: epoch {record['epoch'] + 1} has non-finite weights; best.pt keeps the "
                  "previous best epoch", file=sys.stderr)
            return
        self.pending_best = envelope("best", model=snapshot(weights) if self.every_seconds else weights,
                                     epoch=record["epoch"], record=dict(record), monitor=state.history.monitor,
                                     config=state.config)

    def write_pending_best(self) -> None:
        if self.pending_best is not None:
            self.writer.submit(self.pending_best, self.best_path)
            self.pending_best = None

    def write_history(self, state: Any) -> None:
        """history.csv (epochs 1-based), rewritten atomically on the writer thread; a new row costs one csv line."""
        records = state.history.records
        if self.csv is not None and self.csv[2] <= len(records) and all(
                key in self.csv[0] for record in records[self.csv[2]:] for key in record):
            columns, text, rows = self.csv
            text += "".join(csv_row(record, columns) for record in records[rows:])
        else:  # the first write of this fit, or new columns
            columns = state.history.columns()
            text = csv_header(columns) + "".join(csv_row(record, columns) for record in records)
        self.csv = (columns, text, len(records))
        self.writer.submit_bytes(text.encode(), self.run_dir / "history.csv")

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
        remove_stale_temporaries(self.run_dir)  # every write of this run has landed: dead writers' leftovers go
        if self.save_best and state.history.records and not self.best_path.exists():
            print(f"glassloop: no best.pt in {self.run_dir}: no epoch had a finite {state.history.monitor} with "
                  "finite weights yet, so there are no weights worth keeping (lower the learning rate ~10x or add "
                  "clip_grad_norm=1.0, then train again)", file=sys.stderr)

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
        """curves.png drawn to bytes, then written atomically (a kill never leaves half a PNG)."""
        try:
            figure = state.history.plot(None)
        except ImportError:  # plots module or matplotlib missing: the checkpoint matters more than the picture
            return
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        write_file(buffer.getvalue(), self.run_dir / "curves.png")
