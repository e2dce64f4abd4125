"""Signals and kill -9 at each event boundary (issue 13 item 7), in real subprocesses: the interrupted run, resumed
in a fresh process, ends with bitwise the weights, the records and the stop reason of the uninterrupted run.

The run (tests/reliability/scripts/train.py) sends itself the signal at the chosen event; "es"/"es_restore" stop
early at their 15th epoch (EarlyStopping restore_best False/True), "full" completes 6 epochs of 6 batches, and
"fused" does the same on the fused step's path (no Dropout).
"""

import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch

import glassloop as gl
from tests.conftest import PYTHON, ROOT

SCRIPT = Path(__file__).parent / "scripts" / "train.py"
CODES = {"SIGKILL": -signal.SIGKILL, "SIGINT": 128 + signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM}

# (config, event:occurrence, signal, band of the interrupting callback)
TRIALS = {
    "fit-start-kill-before-any-checkpoint": ("es", "on_fit_start:1", "SIGKILL", "user"),
    "first-batch-end-sigterm": ("full", "on_batch_end:1", "SIGTERM", "user"),
    "after-backward-kill": ("es_restore", "on_after_backward:20", "SIGKILL", "user"),
    "after-backward-sigint": ("full", "on_after_backward:8", "SIGINT", "user"),
    "early-stopping-epoch-before-the-rule-sigint": ("es", "on_epoch_end:15", "SIGINT", "user"),
    "early-stopping-epoch-before-the-rule-sigterm-restore": ("es_restore", "on_epoch_end:15", "SIGTERM", "user"),
    "early-stopping-epoch-after-the-rule-sigint": ("es", "on_epoch_end:15", "SIGINT", "monitors"),
    "early-stopping-epoch-after-the-checkpoint-sigterm": ("es_restore", "on_epoch_end:15", "SIGTERM", "reporters"),
    "early-stopping-epoch-kill": ("es", "on_epoch_end:15", "SIGKILL", "monitors"),
    "last-epoch-end-sigint": ("full", "on_epoch_end:6", "SIGINT", "user"),
    "last-epoch-end-after-the-checkpoint-kill": ("full", "on_epoch_end:6", "SIGKILL", "reporters"),
    "last-batch-of-last-epoch-sigint": ("full", "on_batch_end:36", "SIGINT", "user"),
    "fit-end-kill-while-writes-flush": ("es_restore", "on_fit_end:1", "SIGKILL", "user"),
    "fit-end-sigint-restores-best": ("es_restore", "on_fit_end:1", "SIGINT", "user"),
    # the fused step, its workspace and the flat buffers (a restore rebuilds them in the new process)
    "fused-mid-epoch-kill": ("fused", "on_batch_end:20", "SIGKILL", "user"),
    "fused-mid-epoch-sigint": ("fused", "on_batch_end:9", "SIGINT", "user"),
    "fused-epoch-end-kill-after-the-checkpoint": ("fused", "on_epoch_end:3", "SIGKILL", "reporters"),
}


def _run(run_dir, config, kill_at=None, signal_name="SIGKILL", band="user", twice=False):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("GL_TEST_KILL_AT", "GL_TEST_TWICE"):
        env.pop(name, None)
    if kill_at:
        env.update(GL_TEST_KILL_AT=kill_at, GL_TEST_SIGNAL=signal_name, GL_TEST_BAND=band)
    if twice:
        env["GL_TEST_TWICE"] = "1"
    return subprocess.run([PYTHON, str(SCRIPT), str(run_dir), config], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    cache = {}

    def get(config):
        if config not in cache:
            run_dir = tmp_path_factory.mktemp(f"reference-{config}")
            result = _run(run_dir, config)
            assert result.returncode == 0, result.stderr
            cache[config] = torch.load(run_dir / "final.pt", weights_only=True)
        return cache[config]

    return get


def _assert_same(reference, final):
    for key, tensor in reference["model"].items():
        assert torch.equal(tensor, final["model"][key]), key
    assert final["records"] == reference["records"]
    assert final["best_epoch"] == reference["best_epoch"]
    assert final["stop_reason"] == reference["stop_reason"]  # reads as if nothing happened
    assert final["step_path"] == reference["step_path"]


@pytest.mark.parametrize("name", list(TRIALS))
def test_interrupt_then_resume_equals_the_uninterrupted_run(uninterrupted, tmp_path, name):
    config, kill_at, signal_name, band = TRIALS[name]
    reference = uninterrupted(config)
    assert reference["step_path"] == ("fused" if config == "fused" else "autograd")
    first = _run(tmp_path, config, kill_at, signal_name, band)
    # A signal during on_fit_end lands after fit decided how it ended: the run is complete, exit 0.
    expected = 0 if kill_at.startswith("on_fit_end") and signal_name != "SIGKILL" else CODES[signal_name]
    assert first.returncode == expected, first.stderr
    assert "Traceback" not in first.stderr
    if first.returncode == 0:
        _assert_same(reference, torch.load(tmp_path / "final.pt", weights_only=True))
    if (tmp_path / "latest.pt").exists():
        gl.load_checkpoint(tmp_path / "latest.pt")  # sealed and intact, whatever the instant
    resumed = _run(tmp_path, config)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same(reference, torch.load(tmp_path / "final.pt", weights_only=True))
    assert gl.load_checkpoint(tmp_path / "latest.pt")["finished"]
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    history_csv = (tmp_path / "history.csv").read_text().splitlines()
    assert len(history_csv) == len(reference["records"]) + 1 and history_csv[-1].startswith(
        f"{len(reference['records'])},")  # 1-based, one row an epoch


@pytest.mark.parametrize(("kill_at", "signal_name"), [("on_batch_end:8", "SIGINT"), ("on_epoch_end:3", "SIGTERM")])
def test_a_second_signal_aborts_at_once_and_the_run_still_resumes(uninterrupted, tmp_path, kill_at, signal_name):
    """The first signal asks for a stop after the step; a second one, before that stop is reached, restores the
    previous handler and re-raises: KeyboardInterrupt for SIGINT, death by SIGTERM. Nothing is half-written."""
    reference = uninterrupted("full")
    first = _run(tmp_path, "full", kill_at, signal_name, twice=True)
    signum = getattr(signal, signal_name)
    assert first.returncode == -signum, first.stderr  # died of the signal itself, not a graceful 128 + n exit
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt" in first.stderr
    assert not (tmp_path / "final.pt").exists()
    if (tmp_path / "latest.pt").exists():
        assert not gl.load_checkpoint(tmp_path / "latest.pt")["finished"]  # sealed and intact, the last one saved
    resumed = _run(tmp_path, "full")
    assert resumed.returncode == 0, resumed.stderr
    _assert_same(reference, torch.load(tmp_path / "final.pt", weights_only=True))
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
