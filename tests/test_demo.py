"""The main job (`make demo` runs `glassloop demo`) end to end, short: every artifact it promises is there."""

import json
import os
import subprocess

from tests.conftest import PYTHON, ROOT


def test_demo_runs_end_to_end_and_writes_its_run_directory(tmp_path):
    out = tmp_path / "runs" / "demo"
    result = subprocess.run([PYTHON, "-m", "glassloop", "demo", "--out", str(out), "--epochs", "4"],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("latest.pt", "best.pt", "history.csv", "curves.png", "summary.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["baselines"]) == {"linear", "forest"} and summary["mlflow_run_id"]
    assert "Epoch |   Train Loss |   Val Loss" in result.stdout
    assert "Verdict:" in result.stdout and "mlflow ui --backend-store-uri sqlite:///" in result.stdout
    assert f"glassloop demo --out {out}" in result.stdout
    again = subprocess.run([PYTHON, "-m", "glassloop", "demo", "--out", str(out), "--epochs", "4"],
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert again.returncode == 0 and "already finished" in again.stdout
