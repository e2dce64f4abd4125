"""TensorBoard for `gl.fit` on torch's own `torch.utils.tensorboard.SummaryWriter`: one point per epoch for every
number in the epoch record (`train_loss`, `val_loss`, `lr`, `grad_norm`, `seconds`, each `val_<metric>`) at
step = epoch + 1 (the epoch as shown on screen), and the run's settings in the hparams plugin.

Exactly one point per epoch, even after a kill -9 and a resume: the writer buffers events for up to
`flush_seconds`, so the files on disk may lag the checkpoint or run ahead of it. A logger that finds event files
in its folder therefore opens its writer with `purge_step=1` (TensorBoard drops every earlier point from step 1 on)
and, on a resume, writes every epoch of the restored History again, so what TensorBoard shows is exactly the
checkpoint's record. The hparams (step 0) are written once, at the first start, and kept on a resume.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any

from glassloop.core.state import shown_epoch
from glassloop.errors import ConfigError

INSTALL_HINT = "pip install tensorboard"


class TensorBoardLogger:
    """Log a `gl.fit` run for TensorBoard: `tensorboard --logdir LOG_DIR`.

    `log_dir`: the run's event-file folder (created if missing; one folder per run, as TensorBoard expects).
    `hparams`: also record the run's settings (optimizer, lr, architecture, patience, ...) for the HPARAMS tab.
    `flush_seconds`: how often the writer thread writes buffered events to disk (the end of the fit always does).
    """

    band = "reporters"

    def __init__(self, log_dir: str | os.PathLike[str], *, hparams: bool = True, flush_seconds: float = 10.0) -> None:
        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError(f"TensorBoardLogger needs the tensorboard package, which is not installed; "
                              f"{INSTALL_HINT} (or drop the TensorBoardLogger callback)")
        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir).strip():
            raise ConfigError(f"TensorBoardLogger log_dir={log_dir!r}; expected a folder path, e.g. 'runs/tb/a'")
        if Path(log_dir).exists() and not Path(log_dir).is_dir():
            raise ConfigError(f"TensorBoardLogger log_dir={str(log_dir)!r} is a file; pass a folder path")
        if isinstance(flush_seconds, bool) or not isinstance(flush_seconds, (int, float)) or not flush_seconds > 0:
            raise ConfigError(f"TensorBoardLogger flush_seconds={flush_seconds!r}; expected a number of seconds > 0")
        self.log_dir = Path(log_dir)
        self.hparams = hparams
        self.flush_seconds = float(flush_seconds)
        self.writer: Any = None
        self.hparams_written = False  # restored by a resume: the first start's hparams are kept, never doubled

    def state_dict(self) -> dict[str, Any]:
        return {"log_dir": str(self.log_dir), "hparams_written": self.hparams_written}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hparams_written = bool(state.get("hparams_written", False))

    # -- events ------------------------------------------------------------------------------------------------

    def on_fit_start(self, state: Any) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # installed but broken (e.g. a protobuf mismatch)
            raise ConfigError(f"TensorBoardLogger cannot import torch.utils.tensorboard ({error}); "
                              f"{INSTALL_HINT}") from None
        restored = state.resumed or state.already_finished  # a Checkpoint restored this fit from latest.pt
        if not restored:
            self.hparams_written = False
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Earlier points in this folder (a resume, a run killed before its first checkpoint and started again, or
        # a new run into the same folder) are dropped; the restored History, if any, is written again.
        purge = 1 if _after_existing_files(self.log_dir) else None
        self.writer = SummaryWriter(str(self.log_dir), purge_step=purge, flush_secs=self.flush_seconds)
        for record in state.history.records if restored else ():
            self._write(record)
        if self.hparams and not self.hparams_written:
            self._write_hparams(state)
        self.writer.flush()  # hparams and the rewritten epochs on disk before the first new epoch

    def on_epoch_end(self, state: Any) -> None:
        if self.writer is not None:
            self._write(state.record)

    def on_fit_end(self, state: Any) -> None:
        self.close()

    def on_exception(self, state: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()  # flushes what is buffered

    # -- writing -----------------------------------------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        """The epoch's numbers as one Summary event (TensorBoard reads each value as its own scalar tag): ~0.2 ms
        an epoch, where one `add_scalar` per number costs ~0.17 ms each."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = [Summary.Value(tag=key, simple_value=float(value)) for key, value in record.items()
                  if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)]
        self.writer.file_writer.add_summary(Summary(value=values), shown_epoch(int(record["epoch"])))

    def _write_hparams(self, state: Any) -> None:
        """The hparams plugin's three summaries at step 0, in this run's own folder (torch's `add_hparams` would
        start a second run in a sub-folder); its metrics are this run's scalar tags."""
        from torch.utils.tensorboard.summary import hparams

        from glassloop.callbacks.tracking import hparams as run_hparams

        metrics = {key: 0.0 for key in state.record_keys if key.endswith("_loss") or key.startswith("val_")}
        for summary in hparams(run_hparams(state), metrics):
            self.writer.file_writer.add_summary(summary, 0)
        self.hparams_written = True


def _after_existing_files(log_dir: Path) -> bool:
    """Whether `log_dir` already holds event files. TensorBoard reads them in name order, and a name starts with
    its creation second: wait (under a second, only when an earlier file is from this very second) until a new
    file sorts after every file already there, so that its purge is read last."""
    newest, found = 0, False
    for path in log_dir.glob("events.out.tfevents.*"):
        found = True
        parts = path.name.split(".")
        if len(parts) > 3 and parts[3].isdigit():
            newest = max(newest, int(parts[3]))
    wait = newest + 1 - time.time()
    if 0 < wait <= 2:  # (a file from a clock far ahead is not worth waiting for)
        time.sleep(wait)
    return found
