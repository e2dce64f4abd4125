"""Two real CPU processes under torchrun (gloo): same weights as one process with the same global batch, and an
elastic restart after a rank is killed resumes from latest.pt."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import PYTHON, ROOT

SCRIPT = str(ROOT / "tests" / "scripts" / "train_ddp.py")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def torchrun(*args, timeout=240):
    command = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 and "SIGABRT" in result.stderr and "Traceback (most recent call last)" not in \
            result.stderr.split("ChildFailedError")[0]:
        # Seen once in ~10 clean-clone runs: a rank aborted inside gloo's C++ ("terminate called without an
        # active exception") with no Python error. A launcher-level abort is retried once, from an empty run
        # directory; a wrong result never is.
        for folder in (Path(a) for a in args if Path(a).is_dir()):
            shutil.rmtree(folder)
            folder.mkdir()
        result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=timeout)
    return result


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    subprocess.run([PYTHON, SCRIPT, str(out)], env=ENV, check=True, capture_output=True, timeout=120)
    return torch.load(out / "final.pt", weights_only=True)


def _close(a, b):
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=1e-4, atol=1e-5)
    assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)


def test_two_processes_match_one_process_with_the_same_global_batch(single, tmp_path):
    result = torchrun(SCRIPT, str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    ddp = torch.load(tmp_path / "final.pt", weights_only=True)
    _close(ddp, single)
    assert ddp["train_loss"] == pytest.approx(single["train_loss"], rel=1e-4)  # all-reduced over both ranks


def test_killed_rank_is_restarted_by_torchrun_and_resumes_from_latest(single, tmp_path):
    result = torchrun("--max-restarts=1", SCRIPT, str(tmp_path), "--crash-at", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "attempts.log").read_text().split() == ["0", "1"]  # it really died and was restarted once
    _close(torch.load(tmp_path / "final.pt", weights_only=True), single)


def test_a_last_batch_smaller_than_the_ranks_is_skipped_not_an_empty_shard(tmp_path):
    result = torchrun(SCRIPT, str(tmp_path), "--rows", "321", "--epochs", "2")  # 5 batches of 64, then 1 row
    assert result.returncode == 0, result.stderr[-2000:]
    final = torch.load(tmp_path / "final.pt", weights_only=True)
    assert all(v == v for v in final["train_loss"])  # no NaN from an empty shard


def test_accumulation_under_ddp_matches_one_process_with_the_same_global_batch(single, tmp_path):
    """accumulate=2 under torchrun: micro-batches of 32 global rows (16 a rank), the first inside DDP's no_sync(),
    the second all-reducing the summed gradients: the same steps as one process with batches of 64."""
    result = torchrun(SCRIPT, str(tmp_path), "--accumulate", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    ddp = torch.load(tmp_path / "final.pt", weights_only=True)
    _close(ddp, single)
    assert ddp["train_loss"] == pytest.approx(single["train_loss"], rel=1e-4)
