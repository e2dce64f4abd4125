"""MLflowLogger against a real MLflow store (SQLite + local artifacts in a temp dir), read back with MlflowClient.

One store is shared by the whole module: creating MLflow's SQLite schema takes seconds, a run takes milliseconds.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pytorch
import pytest
import torch
from mlflow.tracking import MlflowClient
from torch import nn

import glassloop as gl
from glassloop.errors import CallbackError

HAS_PLOTS = importlib.util.find_spec("glassloop.analysis.plots") is not None and importlib.util.find_spec("matplotlib")
HAS_DIAGNOSIS = importlib.util.find_spec("glassloop.analysis.diagnosis") is not None


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return {"uri": uri, "client": MlflowClient(uri), "folder": folder}


@pytest.fixture(scope="module")
def data() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A small `ssa`-shaped problem (lesson 004's features and target), 400 rows, first 80% train."""
    generator = torch.Generator().manual_seed(42)
    x = torch.rand(400, 4, generator=generator) * torch.tensor([15.0, 5.0, 1.0, 24.0])
    y = torch.sigmoid(0.5 * x[:, 0] - 2.0 * x[:, 1] + 0.3 * x[:, 2] - 0.1 * x[:, 3] - 2.0).unsqueeze(1)
    return (x[:320], y[:320]), (x[320:], y[320:])


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))


def logger(store: dict[str, Any], name: str, **options: Any) -> Any:
    return gl.MLflowLogger(experiment="tests", tracking_uri=store["uri"], run_name=name, **options)


def steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


class RaiseAt:
    """A user callback that raises at the end of one epoch (0-based), like a bug in user code."""

    def __init__(self, epoch: int, error: BaseException, band: str = "user") -> None:
        self.epoch, self.error, self.band = epoch, error, band

    def on_epoch_end(self, state: Any) -> None:
        if state.record["epoch"] == self.epoch:
            raise self.error


def test_params_metrics_artifacts_and_model_are_read_back(store, data, tmp_path):
    train, val = data
    net = model()
    mlflow_logger = logger(store, "complete", tags={"team": "ssa"})
    history = gl.fit(net, train, val, optimizer="adamw", lr=3e-3, weight_decay=0.01, epochs=8, batch_size=32,
                     scheduler="cosine", clip_grad_norm=1.0, seed=7, metrics=["mae"], verbose=False,
                     callbacks=[gl.EarlyStopping(patience=3), gl.Checkpoint(tmp_path / "run"), mlflow_logger])
    client = store["client"]
    run = client.get_run(mlflow_logger.run_id)
    assert run.info.status == "FINISHED" and mlflow_logger.status == "FINISHED"
    assert run.info.run_name == "complete" and run.data.tags["team"] == "ssa"

    params = run.data.params
    assert params["optimizer"] == "AdamW" and float(params["optimizer.lr"]) == pytest.approx(3e-3)
    assert float(params["optimizer.weight_decay"]) == pytest.approx(0.01)
    assert params["optimizer.betas"] == "(0.9, 0.999)"
    assert params["scheduler.class"] == "CosineAnnealingLR" and params["scheduler.T_max"] == "8"
    assert params["model_class"] == "Sequential" and params["parameters"] == str(4 * 16 + 16 + 16 + 1)
    assert (params["epochs"], params["batch_size"], params["seed"]) == ("8", "32", "7")
    assert (params["clip_grad_norm"], params["train_size"], params["loss"]) == ("1.0", "320", "mse")

    epochs = [r["epoch"] for r in history.records]
    for key in ("train_loss", "val_loss", "lr", "grad_norm", "val_mae", "seconds"):
        logged = client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in logged) == [e + 1 for e in epochs], key  # 1-based steps, as on screen
        assert [m.value for m in sorted(logged, key=lambda m: m.step)] == pytest.approx(history[key]), key
    assert run.data.metrics["best_val_loss"] == pytest.approx(history.best_val_loss)
    assert run.data.tags["glassloop.stop_reason"] == history.stop_reason
    assert run.data.tags["glassloop.best_epoch"] == str(history.best_epoch + 1)

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"history.csv", "model"} <= artifacts
    assert ("curves.png" in artifacts) == bool(HAS_PLOTS)
    csv = Path(client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path)))
    assert csv.read_text() == history.to_csv()
    if HAS_DIAGNOSIS:
        diagnosis = gl.diagnose(history)
        assert run.data.tags["glassloop.analysis.diagnosis.label"] == diagnosis.label
        assert run.data.tags["glassloop.analysis.diagnosis.codes"] == ",".join(f.code for f in diagnosis.findings)
        assert "diagnosis.json" in artifacts

    # The logged model is the instance as fit left it: EarlyStopping(restore_best) put the best weights back.
    loaded = mlflow.pytorch.load_model(f"{run.info.artifact_uri}/model")
    assert torch.equal(loaded(val[0]), net(val[0]))
    assert run.data.tags["glassloop.model_epoch"] == str(history.best_epoch + 1)
    assert mlflow_logger.model_uri == f"runs:/{run.info.run_id}/model"
    # Artifacts live beside the SQLite file, not in ./mlruns of whatever directory pytest started in.
    assert run.info.artifact_uri.startswith((store["folder"] / "mlartifacts").as_uri())


@pytest.mark.parametrize("where", ["callback", "bad batch"])
def test_a_fit_that_raises_leaves_the_run_failed(store, data, where):
    train, val = data
    mlflow_logger = logger(store, f"fails in {where}")
    callbacks: list[Any] = [mlflow_logger]
    compute_loss = None
    if where == "callback":
        callbacks.append(RaiseAt(2, ValueError("user bug")))
        expected: type[BaseException] = CallbackError
    else:
        batches = {"seen": 0}

        def compute_loss(net, batch):  # the 25th batch (epoch 3 of 10 batches) is malformed
            batches["seen"] += 1
            inputs, targets = batch
            if batches["seen"] == 25:
                inputs = inputs[:, :3]
            return nn.functional.mse_loss(net(inputs), targets)

        expected = RuntimeError
    with pytest.raises(expected):
        gl.fit(model(), train, val, epochs=6, batch_size=32, callbacks=callbacks, compute_loss=compute_loss,
               verbose=False)
    run = store["client"].get_run(mlflow_logger.run_id)
    assert run.info.status == "FAILED" and mlflow_logger.status == "FAILED"
    assert run.data.tags["glassloop.error"]
    assert steps(store["client"], mlflow_logger.run_id, "train_loss") == [1, 2]  # every finished epoch
    assert "model" not in {a.path for a in store["client"].list_artifacts(mlflow_logger.run_id)}


def test_keyboard_interrupt_and_signal_leave_the_run_killed(store, data):
    train, val = data
    interrupted = logger(store, "ctrl-c")
    with pytest.raises(KeyboardInterrupt):
        gl.fit(model(), train, val, epochs=5, verbose=False, callbacks=[RaiseAt(1, KeyboardInterrupt()), interrupted])
    assert store["client"].get_run(interrupted.run_id).info.status == "KILLED"

    class SendSigterm:
        def on_batch_end(self, state: Any) -> None:
            if state.step == 15:
                os.kill(os.getpid(), signal.SIGTERM)  # gl.fit's handler: stop after this step, exit cleanly

    signalled = logger(store, "sigterm")
    history = gl.fit(model(), train, val, epochs=5, verbose=False, callbacks=[SendSigterm(), signalled])
    run = store["client"].get_run(signalled.run_id)
    assert run.info.status == "KILLED" and "SIGTERM" in run.data.tags["glassloop.stop_reason"]
    assert len(history.records) == 1  # the interrupted second epoch is not a finished epoch
    assert "model" not in {a.path for a in store["client"].list_artifacts(signalled.run_id)}


@pytest.mark.parametrize("band", ["user", "reporters"])
def test_resume_continues_the_same_run_with_every_epoch_once(store, data, tmp_path, band):
    # band "user": the crash comes before the checkpoint of epoch 3. band "reporters" (listed before the logger):
    # epoch 3 is checkpointed but never reached MLflow, as after a kill between the two writes; the resumed
    # logger must backfill it from the restored History.
    train, val = data
    first = logger(store, f"resume-{band}")
    with pytest.raises(CallbackError):
        gl.fit(model(), train, val, epochs=6, seed=3, verbose=False,
               callbacks=[gl.Checkpoint(tmp_path), RaiseAt(3, ValueError("crash"), band), first])
    client = store["client"]
    assert client.get_run(first.run_id).info.status == "FAILED"
    assert steps(client, first.run_id, "train_loss") == [1, 2, 3]

    second = logger(store, "ignored on resume")
    history = gl.fit(model(), train, val, epochs=6, seed=3, verbose=False,
                     callbacks=[gl.Checkpoint(tmp_path, resume=True), second])
    assert second.run_id == first.run_id
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["glassloop.resumes"] == "1"
    assert run.info.run_name == f"resume-{band}"
    for key in ("train_loss", "val_loss", "lr", "grad_norm"):
        assert steps(client, first.run_id, key) == list(range(1, 7)), key
    logged = sorted(client.get_metric_history(first.run_id, "val_loss"), key=lambda m: m.step)
    assert [m.value for m in logged] == pytest.approx(history["val_loss"])
    runs = client.search_runs([run.info.experiment_id], f"tags.mlflow.runName = 'resume-{band}'")
    assert len(runs) == 1

    # Resuming a finished run changes nothing: no new run, no status change, no duplicate metrics.
    third = logger(store, "finished")
    gl.fit(model(), train, val, epochs=6, seed=3, verbose=False,
           callbacks=[gl.Checkpoint(tmp_path, resume=True), third])
    assert third.run_id == first.run_id
    assert client.get_run(first.run_id).info.status == "FINISHED"
    assert steps(client, first.run_id, "train_loss") == list(range(1, 7))


def test_metrics_are_in_the_store_while_training(store, data):
    # flush_seconds=0: every epoch is written at its end, so the UI shows the run live.
    train, val = data
    seen: list[list[int]] = []

    class Watch:
        band = "reporters"  # after the logger (same band, listed later)

        def on_epoch_end(self, state: Any) -> None:
            seen.append(steps(store["client"], live.run_id, "val_loss"))

    live = logger(store, "live", log_model=False, flush_seconds=0)
    gl.fit(model(), train, val, epochs=3, verbose=False, callbacks=[live, Watch()])
    assert seen == [[1], [1, 2], [1, 2, 3]]


def test_default_uri_env_and_the_global_active_run_are_respected(store, data, monkeypatch):
    # tracking_uri=None means MLflow's default, which honours $MLFLOW_TRACKING_URI. A user's own active run
    # (mlflow.start_run) is left alone: the logger uses its own run through MlflowClient.
    train, val = data
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    outer_experiment = store["client"].get_experiment_by_name("outer") or store["client"].create_experiment("outer")
    outer_experiment = getattr(outer_experiment, "experiment_id", outer_experiment)
    with mlflow.start_run(experiment_id=outer_experiment) as outer:
        inner = gl.MLflowLogger(experiment="tests", log_model=False)
        gl.fit(model(), train, val, epochs=2, verbose=False, callbacks=[inner])
        assert mlflow.active_run().info.run_id == outer.info.run_id
    assert inner.tracking_uri == store["uri"] and inner.run_id != outer.info.run_id
    run = store["client"].get_run(inner.run_id)
    artifacts = {a.path for a in store["client"].list_artifacts(inner.run_id)}
    assert run.info.status == "FINISHED" and "model" not in artifacts
    assert ("curves.png" in artifacts) == bool(HAS_PLOTS)  # no Checkpoint drew it: the logger did
    assert store["client"].get_run(outer.info.run_id).info.status == "FINISHED"
    assert not store["client"].get_run(outer.info.run_id).data.metrics  # nothing leaked into the user's run


def test_import_glassloop_does_not_import_mlflow():
    code = "import sys, glassloop as gl; assert 'mlflow' not in sys.modules; gl.MLflowLogger; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr
