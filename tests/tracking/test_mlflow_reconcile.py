"""Issue 13 item 3: the MLflow run always closes. Real subprocesses SIGKILL themselves at the instants between the
final checkpoint and the logger's close; a resume with a fresh logger must reconcile the run: every epoch exactly
once (backfilled from the checkpoint's History), the closing tags and model, and the final status FINISHED."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow.pytorch
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # the glassloop under test, not another install
SCRIPT = Path(__file__).with_name("kill_script.py")
spec = importlib.util.spec_from_file_location("kill_script", SCRIPT)
kill_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kill_script)

# instant -> (flush_seconds, the run's status and logged epochs right after the kill)
INSTANTS = {
    "checkpoint-fit-end": (3600.0, "RUNNING", 0),  # the case: RUNNING forever, 0 epochs logged
    "reporters-fit-end": (3600.0, "RUNNING", 0),
    "reporters-epoch-end": (0.0, "RUNNING", kill_script.EPOCHS),  # every epoch written, never closed
    "after-close": (3600.0, "FINISHED", kill_script.EPOCHS),
}


@pytest.fixture(scope="module")
def killed(store: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every instant's run, killed in its own subprocess (all at once: each pays its own imports)."""
    folder = tmp_path_factory.mktemp("killed")
    processes = {}
    for instant, (flush_seconds, _, _) in INSTANTS.items():
        command = [sys.executable, str(SCRIPT), str(folder / instant), store["uri"], instant, str(flush_seconds)]
        processes[instant] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                             env=ENV)
    for instant, process in processes.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == -signal.SIGKILL, f"{instant}: exit {process.returncode}\n{stderr[-2000:]}"
    return {instant: folder / instant for instant in INSTANTS}


def only_run(client: Any, name: str) -> Any:
    experiment = client.get_experiment_by_name("reconcile")
    runs = client.search_runs([experiment.experiment_id], f"tags.mlflow.runName = '{name}'")
    assert len(runs) == 1, [r.info.run_id for r in runs]  # a resume never splits the run in two
    return runs[0]


@pytest.mark.parametrize("instant", list(INSTANTS))
def test_resume_reconciles_a_run_killed_before_its_close(store, killed, instant):
    client = store["client"]
    _, status, logged = INSTANTS[instant]
    before = only_run(client, instant)
    assert before.info.status == status
    assert len(client.get_metric_history(before.info.run_id, "train_loss")) == logged

    history, logger = kill_script.fit(killed[instant], store["uri"], instant, resume=True)
    assert logger.run_id == before.info.run_id
    run = only_run(client, instant)
    assert run.info.status == "FINISHED" and logger.status == "FINISHED"
    for key in ("train_loss", "val_loss", "lr", "grad_norm", "seconds"):
        entries = client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in entries) == list(range(1, kill_script.EPOCHS + 1)), key  # once each
        assert [m.value for m in sorted(entries, key=lambda m: m.step)] == pytest.approx(history[key]), key
    tags = run.data.tags
    assert tags["glassloop.stop_reason"] == history.stop_reason
    assert tags["glassloop.best_epoch"] == str(history.best_epoch + 1)
    assert run.data.metrics["best_val_loss"] == pytest.approx(history.best_val_loss)
    assert ("glassloop.reconciled" in tags) == (instant != "after-close")
    # The logged model is the best epoch's weights (EarlyStopping(restore_best)), as the uninterrupted run logs.
    best = kill_script.model()
    best.load_state_dict(torch.load(killed[instant] / "best.pt", weights_only=True)["model"])
    loaded = mlflow.pytorch.load_model(f"{run.info.artifact_uri}/model")
    inputs = kill_script.data()[1][0]
    assert torch.equal(loaded(inputs), best(inputs))

    # A second resume of the reconciled run changes nothing.
    again_history, again = kill_script.fit(killed[instant], store["uri"], instant, resume=True)
    assert again.run_id == run.info.run_id and again_history.records == history.records
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == kill_script.EPOCHS
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
