"""One writer per run directory (real concurrent processes), the pydantic run record, kills at many instants of a
`glassloop fit` (the first milliseconds included) and what each leaves resumable, and the CLI under torchrun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glassloop import cli
from glassloop.tabular.rundir import LOCK_NAME, RunLock, clean_temporaries

ROOT = Path(__file__).resolve().parents[2]
ENV = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"PYTHONPATH": str(ROOT)}
FAST = ["--target", "y", "--no-mlflow", "--baselines", "none", "--hidden", "4"]


def table(path: Path, rows: int = 60) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 2))
    pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "y": x @ [1.0, -2.0] + 0.1 * rng.normal(size=rows)}).to_csv(
        path, index=False)
    return path


def glassloop(*args: str, cwd: Path | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glassloop", *args], env=ENV, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def test_a_second_writer_is_refused_naming_the_pid_and_a_dead_one_never_blocks(tmp_path) -> None:
    data = table(tmp_path / "t.csv")
    run = tmp_path / "run"
    slow = [sys.executable, "-m", "glassloop", "fit", str(data), "--out", str(run), *FAST, "--epochs", "100000",
            "--patience", "100000", "--batch-size", "1"]
    first = subprocess.Popen(slow, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "latest.pt").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert (run / "latest.pt").exists()
        before = (run / "config.json").read_bytes()
        for command in (["resume", str(run), "--no-mlflow"], ["predict", str(run), str(data), "--out",
                                                               str(tmp_path / "p.csv")]):
            second = glassloop(*command)
            assert second.returncode == 2, second.stderr
            assert len(second.stderr.strip().splitlines()) == 1 and f"in use by process {first.pid}" in second.stderr
            assert f"kill {first.pid}" in second.stderr and "Traceback" not in second.stderr
        again = glassloop("fit", str(data), "--out", str(run), *FAST)  # not empty: refused before the lock
        assert again.returncode == 2 and "glassloop resume" in again.stderr
        assert (run / "config.json").read_bytes() == before and not (tmp_path / "p.csv").exists()
    finally:
        first.kill()  # SIGKILL: no cleanup runs; the kernel drops the flock with the process
        first.wait(timeout=60)
    (run / f".history.csv.tmp-{first.pid}").write_text("half")  # a dead writer's temporary
    live = run / f".summary.json.tmp-{os.getpid()}"  # this live process's: never touched
    live.write_text("mine")
    with RunLock(run, "test"):  # the killed holder's lock is gone with it: taken at once
        assert clean_temporaries(run) == [f".history.csv.tmp-{first.pid}"]
    assert live.exists()


def test_the_lock_changes_nothing_a_reader_sees(tmp_path) -> None:
    (tmp_path / LOCK_NAME).symlink_to(tmp_path / "elsewhere")  # a planted symlink is refused, never followed
    with pytest.raises(Exception, match="symlink"):
        RunLock(tmp_path, "glassloop resume x").acquire()
    assert not (tmp_path / "elsewhere").exists()
    (tmp_path / LOCK_NAME).unlink()
    lock = RunLock(tmp_path, "x").acquire()
    stamp = (tmp_path / LOCK_NAME).stat().st_mtime_ns
    lock.release()
    RunLock(tmp_path, "x").acquire().release()
    assert (tmp_path / LOCK_NAME).stat().st_mtime_ns == stamp and (tmp_path / LOCK_NAME).read_bytes() == b""


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("finished")
    code = cli.main(["fit", str(table(root / "t.csv")), "--out", str(root / "run"), *FAST, "--epochs", "2"])
    assert code == 0
    return root / "run"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("config_version", True, "config_version True"),
    ("data_sha256", 5, "data_sha256"),
    ("model.dropout", "0.1", "model.dropout"),
    ("model.hidden", [4.0], "model.hidden"),
    ("transform.scaler.std", [0.0, 1.0], "transform.scaler.std"),
    ("transform.task", "ranking", "transform.task"),
    ("options.lr", True, "options.lr"),
    ("surprise", 1, "surprise"),
])
def test_config_json_is_validated_by_type(finished, tmp_path, capsys, key: str, value, message: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    record = json.loads((run / "config.json").read_text())
    *parents, last = key.split(".")
    node = record
    for part in parents:
        node = node[part]
    node[last] = value
    (run / "config.json").write_text(json.dumps(record))
    assert cli.main(["resume", str(run), "--no-mlflow"]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and "config.json" in error and message in error, error


def test_a_foreign_checkpoint_of_the_same_shapes_is_one_line(finished, tmp_path, capsys) -> None:
    other = tmp_path / "other"
    code = cli.main(["fit", str(finished.parent / "t.csv"), "--out", str(other), *FAST, "--epochs", "3",
                     "--seed", "9"])
    assert code == 0
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    shutil.copy(other / "latest.pt", run / "latest.pt")
    (run / "summary.json").unlink()
    code = cli.main(["resume", str(run), "--no-mlflow"])
    error = capsys.readouterr().err
    assert code == 2 and len(error.strip().splitlines()) == 1 and "Traceback" not in error, error


KILL_AFTER = [0.0, 0.15, 0.6, 1.5, 3.0, 6.0]  # seconds after the start: imports, validation, config.json, epochs


@pytest.mark.parametrize("delay", KILL_AFTER)
def test_killed_at_any_instant_the_directory_is_never_a_dead_end(tmp_path, delay: float) -> None:
    data = table(tmp_path / "t.csv")
    run = tmp_path / "run"
    args = ["fit", str(data), "--out", str(run), *FAST, "--epochs", "30", "--patience", "30", "--batch-size", "2"]
    process = subprocess.Popen([sys.executable, "-m", "glassloop", *args], env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    if not run.exists() or not [p for p in run.iterdir() if p.name != LOCK_NAME]:
        follow = glassloop(*args)  # nothing kept: fit works again on the same --out
    else:
        follow = glassloop("resume", str(run), "--no-mlflow")
        if follow.returncode == 2:  # the message must name a command that works from this state
            assert "glassloop fit" in follow.stderr, follow.stderr
            shutil.rmtree(run)
            follow = glassloop(*args)
    assert follow.returncode == 0, follow.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["network"]["epochs_run"] == 30 and (run / "best.pt").is_file()


def test_torchrun_fit_rank_zero_writes(tmp_path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    data = table(tmp_path / "t.csv", rows=80)
    run = tmp_path / "run"
    result = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "glassloop", "fit",
                             str(data), "--out", str(run), *FAST, "--epochs", "3", "--batch-size", "16"],
                            env=ENV, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "already exists" not in result.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["network"]["epochs_run"] == 3
    history = pd.read_csv(run / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3] or list(history["epoch"]) == [0, 1, 2]
    assert result.stdout.count("run saved in") == 1  # only rank 0 reports
