"""A gl.fit run with Checkpoint + TensorBoardLogger interrupted at a chosen point (tests/test_tensorboard.py runs it
as a subprocess, then resumes the same run in its own process with `fit(..., resume=True)`).

    python tensorboard_script.py RUN_DIR LOG_DIR sigint|sigkill

sigint: SIGINT in the middle of epoch 3 (gl.fit stops after that step and saves the position; the process exits 0).
sigkill: latest.pt only once an hour (so it holds epoch 1), TensorBoard's points of epochs 1-4 flushed to disk,
then SIGKILL: the event files run ahead of the checkpoint, and the resume retrains epochs 2-4.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import glassloop as gl
from glassloop.callbacks.tensorboard import TensorBoardLogger

EPOCHS = 6


def data() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(42)
    x = torch.rand(200, 4, generator=generator) * torch.tensor([15.0, 5.0, 1.0, 24.0])
    y = torch.sigmoid(0.5 * x[:, 0] - 2.0 * x[:, 1] + 0.3 * x[:, 2] - 0.1 * x[:, 3] - 2.0).unsqueeze(1)
    return (x[:160], y[:160]), (x[160:], y[160:])


class Interrupt:
    band = "reporters"  # after the TensorBoardLogger

    def __init__(self, how: str, logger: TensorBoardLogger, run_dir: Path) -> None:
        self.how, self.logger, self.run_dir = how, logger, run_dir

    def on_batch_end(self, state: Any) -> None:
        if self.how == "sigint" and state.epoch == 2 and state.batch_index == 2:
            os.kill(os.getpid(), signal.SIGINT)

    def on_epoch_end(self, state: Any) -> None:
        if self.how == "sigkill" and state.record["epoch"] == 3:
            self.logger.writer.flush()
            while not (self.run_dir / "latest.pt").exists():  # epoch 1's checkpoint, on a background thread
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)


def fit(run_dir: Path, log_dir: Path, how: str | None = None) -> tuple[Any, TensorBoardLogger]:
    train, val = data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    logger = TensorBoardLogger(log_dir)
    every = 3600.0 if how == "sigkill" else 0.0
    callbacks = [gl.Checkpoint(run_dir, resume=how is None, every_seconds=every), logger]
    if how is not None:
        callbacks.append(Interrupt(how, logger, run_dir))
    history = gl.fit(model, train, val, epochs=EPOCHS, batch_size=32, seed=5, metrics=["mae"], verbose=False,
                     callbacks=callbacks)
    return history, logger


if __name__ == "__main__":
    fit(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
