"""Exact resume of a whole sweep: kill -9 a real sweep process, resume it, and get bitwise the same result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import glassloop as gl
from glassloop.core.checkpoint import load_checkpoint
from glassloop.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 10
SCRIPT = f"""
import sys, time
import glassloop as gl
from glassloop.core.workloads import mlp, ssa

class Slow:  # an epoch of this tiny sweep takes milliseconds: slow it so the kill lands mid-sweep
    def on_epoch_end(self, state):
        if state.index == 0:
            time.sleep(0.15)

train, val = ssa(n=400)
gl.sweep(lambda: mlp((4, 16, 16, 1)), train, val, {{"lr": [1e-3, 3e-2], "seed": [0, 1]}}, epochs={EPOCHS},
         batch_size=32, scheduler="onecycle", patience=3, threads=1, verbose=False, callbacks=[Slow()],
         run_dir=sys.argv[1], resume=True)
"""


def run_sweep(run_dir: Path | None, resume: bool = True, epochs: int = EPOCHS) -> gl.sweeps.SweepResult:
    from glassloop.core.workloads import mlp, ssa

    train, val = ssa(n=400)
    return gl.sweep(lambda: mlp((4, 16, 16, 1)), train, val, {"lr": [1e-3, 3e-2], "seed": [0, 1]}, epochs=epochs,
                    batch_size=32, scheduler="onecycle", patience=3, threads=1, verbose=False,
                    run_dir=run_dir, resume=resume)


def saved_epoch(path: Path) -> int:
    try:
        return load_checkpoint(path, kind="sweep")["epoch"]
    except CheckpointError:
        return -1  # not written yet (or, never: a half-written one; the writes are atomic)


def records(result) -> list[list[dict]]:
    return [[{k: v for k, v in r.items() if k != "seconds"} for r in h.records] for h in result.histories]


def test_kill_9_then_resume_is_bitwise_the_uninterrupted_sweep(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(run_dir)], cwd=ROOT)
    deadline = time.monotonic() + 120
    while saved_epoch(run_dir / "latest.pt") < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    killed_at = saved_epoch(run_dir / "latest.pt")
    assert 3 <= killed_at < EPOCHS, killed_at  # killed mid-sweep, with a loadable latest.pt
    assert not load_checkpoint(run_dir / "latest.pt", kind="sweep")["finished"]

    resumed = run_sweep(run_dir)
    reference = run_sweep(None)
    assert torch.equal(resumed._stack.flat, reference._stack.flat)  # bitwise, not approximately
    assert torch.equal(resumed._best, reference._best)
    assert records(resumed) == records(reference)
    assert [h.stop_reason for h in resumed.histories] == [h.stop_reason for h in reference.histories]
    assert resumed.table == reference.table
    assert (run_dir / "sweep.csv").read_text() == reference.to_csv()
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_a_finished_sweep_resumes_to_the_same_result_without_training(tmp_path):
    first = run_sweep(tmp_path, epochs=3)
    again = run_sweep(tmp_path, epochs=3)
    assert torch.equal(first._best, again._best) and records(first) == records(again)


def test_resume_refuses_other_settings_and_overwrites_nothing(tmp_path):
    run_sweep(tmp_path, epochs=2)
    before = (tmp_path / "latest.pt").read_bytes()
    with pytest.raises(CheckpointError, match="epochs=2 .* this sweep has epochs=3"):
        run_sweep(tmp_path, epochs=3)
    with pytest.raises(CheckpointError, match="already holds a sweep; pass resume=True"):
        run_sweep(tmp_path, resume=False, epochs=2)
    assert (tmp_path / "latest.pt").read_bytes() == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        run_sweep(tmp_path / "file", epochs=2)
