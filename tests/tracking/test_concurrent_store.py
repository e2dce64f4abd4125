"""Issue 13 item 4: 4 processes start on a fresh SQLite store at once. Without the lock beside the database,
MLflow's schema creation races ("table `_alembic_tmp_experiments` already exists") and breaks the store; with
`glassloop.callbacks.tracking.client` every process gets a working store, quietly (issue 13 item 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # the glassloop under test, not another install
SCRIPT = Path(__file__).with_name("store_script.py")
PROCESSES = 4


def test_four_processes_create_one_working_store(tmp_path):
    database = tmp_path / "store" / "mlflow.db"  # its folder does not exist yet either: client() creates it
    uri = f"sqlite:///{database}"
    command = [sys.executable, str(SCRIPT), uri, str(tmp_path)]
    processes = [subprocess.Popen([*command, str(index), str(PROCESSES)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=ENV) for index in range(PROCESSES)]
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        assert "INFO" not in stderr, stderr  # no "Creating initial MLflow database tables..." lines
    run_ids = {stdout.strip() for stdout, _ in results}
    assert len(run_ids) == PROCESSES

    store = MlflowClient(uri)
    experiments = [e for e in store.search_experiments() if e.name == "concurrent"]
    assert len(experiments) == 1  # one experiment, created by whichever process came first
    runs = store.search_runs([experiments[0].experiment_id])
    assert {r.info.run_id for r in runs} == run_ids
    assert sorted(r.data.metrics["index"] for r in runs) == [0.0, 1.0, 2.0, 3.0]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert database.with_name("mlflow.db.lock").is_file()  # the lock lives beside the database
