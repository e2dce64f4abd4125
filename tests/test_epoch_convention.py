"""One epoch convention (issue 12 item 3): for one run, every place a person or a file sees the best epoch
agrees — console, history.csv, summary.json, MLflow tags and metric steps, TensorBoard steps, diagnosis text and
JSON, `glassloop diagnose`, sweep.csv — all 1-based, while History stays 0-based in Python."""

import csv
import io
import json
import re

import torch
from torch import nn

import glassloop as gl
from glassloop.cli import main
from glassloop.tabular import datasets


def best_row_epoch(path):
    rows = list(csv.DictReader(path.open()))
    return int(min(rows, key=lambda row: float(row["val_loss"]))["epoch"])


def test_every_record_of_one_fit_names_the_same_best_epoch(tmp_path, capsys):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator)
    y = x.sum(1, keepdim=True) + 0.3 * torch.randn(200, 1, generator=generator)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 1))
    console = io.StringIO()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    logger = gl.MLflowLogger(experiment="epochs", tracking_uri=uri)
    history = gl.fit(model, (x[:150], y[:150]), val=(x[150:], y[150:]), epochs=30, lr=3e-2, batch_size=16, seed=0,
                     verbose=False, callbacks=[gl.EarlyStopping(patience=4), gl.Checkpoint(tmp_path / "run"), logger,
                                               gl.TensorBoardLogger(tmp_path / "tb"), gl.Console(stream=console)])
    shown = history.best_epoch + 1  # History is 0-based; everything below is 1-based
    assert re.search(rf"Best val loss: \S+ at epoch {shown}\b", console.getvalue())
    assert best_row_epoch(tmp_path / "run" / "history.csv") == shown
    diagnosis = history.diagnose()
    assert diagnosis.to_dict()["best_epoch"] == shown and f"best epoch {shown}" in str(diagnosis)
    client = MlflowClient(uri)
    assert client.get_run(logger.run_id).data.tags["glassloop.best_epoch"] == str(shown)
    steps = client.get_metric_history(logger.run_id, "val_loss")
    assert min(steps, key=lambda metric: metric.value).step == shown
    accumulator = EventAccumulator(str(tmp_path / "tb"))
    accumulator.Reload()
    tag = next(t for t in accumulator.Tags()["scalars"] if t.endswith("val_loss"))
    assert min(accumulator.Scalars(tag), key=lambda event: event.value).step == shown
    capsys.readouterr()
    assert main(["diagnose", str(tmp_path / "run"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["best_epoch"] == shown


def test_glassloop_fit_summary_history_and_diagnosis_agree(tmp_path, capsys):
    out = tmp_path / "crop"
    assert main(["fit", str(datasets.path("crop")), "--target", "yield_t_ha", "--time-column", "date", "--out",
                 str(out), "--epochs", "12", "--no-mlflow", "--baselines", "none"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    best = summary["network"]["best_epoch"] if "best_epoch" in summary.get("network", {}) else summary["best_epoch"]
    assert best == best_row_epoch(out / "history.csv")
    capsys.readouterr()
    assert main(["diagnose", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["best_epoch"] == best


def test_sweep_csv_is_1_based_like_history_csv(tmp_path):
    from glassloop.core.workloads import mlp, ssa

    train, val = ssa(n=400)
    result = gl.sweep(lambda: mlp((4, 8, 1)), train, val, {"seed": [0, 1]}, epochs=4, batch_size=32, verbose=False)
    rows = list(csv.DictReader(io.StringIO(result.to_csv(tmp_path / "sweep.csv"))))
    for row, history in zip(rows, result.histories):
        assert int(row["best_epoch"]) == history.best_epoch + 1
