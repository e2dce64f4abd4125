"""Ranks that agree and never hang (issue 13): a signal on one rank, NaN on one rank's shard, and repeated runs
next to a busy neighbour process all end on every rank, within a bounded time."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PYTHON, ROOT

SCRIPT = str(ROOT / "tests" / "scripts" / "train_ddp_agree.py")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "GLASSLOOP_DDP_TIMEOUT": "60"}


def torchrun(out, *args):
    command = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", SCRIPT, str(out), *args]
    # a hang would hit this timeout: every collective is shared, so the run must end well before it
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=180)


def result(out):
    return json.loads((out / "result.json").read_text())


def test_a_signal_on_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    run = torchrun(tmp_path, "--signal-at", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    done = result(tmp_path)
    assert done["epochs"] == 2 and "interrupted" in done["stop_reason"]  # epochs 1-2 recorded, 3 cut short


def test_nan_in_one_ranks_shard_stops_every_rank_before_the_update(tmp_path):
    run = torchrun(tmp_path, "--nan-row", "5")
    assert run.returncode == 0, run.stderr[-3000:]
    assert result(tmp_path)["stop_reason"].startswith("non-finite loss")


@pytest.fixture
def busy_neighbour():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield
    spinner.kill()
    spinner.wait()


def test_repeated_runs_next_to_a_busy_neighbour_all_finish(tmp_path, busy_neighbour):
    results = []
    for attempt in range(2):
        out = tmp_path / str(attempt)
        out.mkdir()
        run = torchrun(out, "--epochs", "12")
        assert run.returncode == 0, run.stderr[-3000:]
        results.append(result(out))
    assert results[0] == results[1]  # the same seed, the same run: the same epochs and the same stop reason
    done = results[0]  # the run ended the way its record says: all 12 epochs, or early stopping
    expected = ("completed 12 epochs", "early stopping") if done["epochs"] == 12 else ("early stopping",)
    assert done["stop_reason"].startswith(expected), done


def test_the_same_seed_gives_the_same_bits_whatever_else_the_machine_is_doing():
    """The thread count comes from the model and the machine, never the load (glassloop/core/rules.py)."""
    import torch
    from torch import nn

    import glassloop as gl
    from glassloop.core.rules import SMALL_STEP_MACS

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 32, generator=generator)
    y = x[:, :1] * 2

    def train():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 1))
        assert 256 * sum(p.numel() for p in model.parameters()) >= SMALL_STEP_MACS  # a GEMM-heavy step
        history = gl.fit(model, (x, y), epochs=2, batch_size=256, seed=0, verbose=False)
        return [p.detach().clone() for p in model.parameters()], history

    quiet, quiet_history = train()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        busy, _ = train()
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    assert all(torch.equal(a, b) for a, b in zip(quiet, busy))
