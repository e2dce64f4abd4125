"""A gl.fit run with Checkpoint + EarlyStopping + MLflowLogger that SIGKILLs itself at one chosen instant between
the final checkpoint and the logger's close (tests/tracking/test_mlflow_reconcile.py runs it as a subprocess).

    python kill_script.py RUN_DIR TRACKING_URI INSTANT [FLUSH_SECONDS]

The test imports `data`, `model` and `callbacks` from here to resume the same run in its own process.
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

EPOCHS = 6


def data() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A 300-row `ssa`-shaped problem (lesson 004's features and target), first 80% train."""
    generator = torch.Generator().manual_seed(42)
    x = torch.rand(300, 4, generator=generator) * torch.tensor([15.0, 5.0, 1.0, 24.0])
    y = torch.sigmoid(0.5 * x[:, 0] - 2.0 * x[:, 1] + 0.3 * x[:, 2] - 0.1 * x[:, 3] - 2.0).unsqueeze(1)
    return (x[:240], y[:240]), (x[240:], y[240:])


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))


class KillAt:
    """SIGKILL this process at `event` (`on_epoch_end` only in the final epoch), once the final latest.pt is on
    disk; its band and its place in the list choose the instant relative to Checkpoint and MLflowLogger."""

    def __init__(self, event: str, band: str, run_dir: Path) -> None:
        self.band, self.run_dir = band, run_dir
        setattr(self, event, self.kill)

    def kill(self, state: Any) -> None:
        if state.record and state.record["epoch"] + 1 < EPOCHS:
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the checkpoint is written on a background thread
            try:
                if gl.load_checkpoint(self.run_dir / "latest.pt")["finished"]:
                    break
            except Exception:  # noqa: BLE001 - not there yet
                pass
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)


def callbacks(run_dir: Path, uri: str, instant: str, flush_seconds: float, resume: bool) -> list[Any]:
    logger = gl.MLflowLogger(experiment="reconcile", tracking_uri=uri, run_name=instant, flush_seconds=flush_seconds)
    found = [gl.EarlyStopping(patience=50), gl.Checkpoint(run_dir, resume=resume)]
    if resume or instant == "none":
        return [*found, logger]
    if instant == "checkpoint-fit-end":  # after the final latest.pt, history.csv and curves; before any reporter
        return [*found, KillAt("on_fit_end", "checkpoint", run_dir), logger]
    if instant == "reporters-fit-end":  # right before the logger's close, after the other reporters
        return [*found, KillAt("on_fit_end", "reporters", run_dir), logger]
    if instant == "reporters-epoch-end":  # the final epoch queued in the logger, the run not closed
        return [*found, logger, KillAt("on_epoch_end", "reporters", run_dir)]
    if instant == "after-close":  # the run closed: a resume must change nothing
        return [*found, logger, KillAt("on_fit_end", "reporters", run_dir)]
    raise SystemExit(f"unknown instant {instant!r}")


def fit(run_dir: Path, uri: str, instant: str, flush_seconds: float = 3600.0, resume: bool = False) -> Any:
    train, val = data()
    chosen = callbacks(run_dir, uri, instant, flush_seconds, resume)
    history = gl.fit(model(), train, val, epochs=EPOCHS, batch_size=32, seed=3, verbose=False, callbacks=chosen)
    return history, chosen[-1]


if __name__ == "__main__":
    fit(Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 3600.0)
    raise SystemExit(3)  # never reached: the KillAt callback kills the process first
