"""`glassloop fit` interrupted by SIGINT/SIGTERM exits 130/143 with latest.pt written, and `glassloop resume`
finishes the run; the finished run then reports it has nothing to resume."""

import os
import signal
import subprocess
import time

import pytest

from glassloop.tabular.datasets import path as dataset_path
from tests.conftest import PYTHON, ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _glassloop(*args, timeout=180):
    return subprocess.run([PYTHON, "-m", "glassloop", *args], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_fit_interrupted_exits_128_plus_signal_and_resume_finishes(tmp_path, signum, code):
    run = tmp_path / "run"
    command = [PYTHON, "-m", "glassloop", "fit", str(dataset_path("crop")), "--target", "yield_t_ha",
               "--out", str(run), "--no-mlflow", "--baselines", "linear", "--epochs", "200",
               "--patience", "200", "--batch-size", "4"]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "latest.pt").exists() and time.time() < deadline:  # training has really started
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and f"glassloop resume {run}" in stderr

    import glassloop as gl

    assert not gl.load_checkpoint(run / "latest.pt")["finished"]
    assert not (run / "summary.json").exists()  # a partial run gets no verdict
    resumed = _glassloop("resume", str(run), "--no-mlflow")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming at epoch" in resumed.stdout
    history = gl.load_checkpoint(run / "latest.pt")["history"]
    assert [r["epoch"] for r in history["records"]] == list(range(len(history["records"])))  # no gap, no repeat
    assert (run / "summary.json").exists()
    again = _glassloop("resume", str(run), "--no-mlflow")
    assert again.returncode == 0 and "already finished" in again.stdout
