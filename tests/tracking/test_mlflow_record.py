"""Issue 12 items 1-3 for gl.fit + MLflowLogger (a model that loads with mlflow.pytorch and mlflow.pyfunc, with a
signature and an input example; the complete configuration as params; 1-based steps and tags; baselines as
sibling runs) and issue 13 item 11 (bad input creates no store and prints no MLflow INFO lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import mlflow.pytorch
import numpy as np
import pytest
import torch
from mlflow.models import Model
from torch import nn

import glassloop as gl
from glassloop.errors import ConfigError, GlassloopError


def data() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(42)
    x = torch.rand(240, 4, generator=generator) * torch.tensor([15.0, 5.0, 1.0, 24.0])
    y = torch.sigmoid(0.5 * x[:, 0] - 2.0 * x[:, 1] + 0.3 * x[:, 2] - 0.1 * x[:, 3] - 2.0).unsqueeze(1)
    return (x[:192], y[:192]), (x[192:], y[192:])


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))


@pytest.fixture(scope="module")
def fitted(store: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    train, val = data()
    model = network()
    logger = gl.MLflowLogger(experiment="record", tracking_uri=store["uri"], run_name="record")
    history = gl.fit(model, train, val, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, epochs=5,
                     batch_size=48, scheduler="step", seed=11, verbose=False,
                     callbacks=[gl.EarlyStopping(patience=3, min_delta=1e-4),
                                gl.Checkpoint(tmp_path_factory.mktemp("record")), logger])
    return {"model": model, "logger": logger, "history": history, "val": val,
            "run": store["client"].get_run(logger.run_id)}


def test_the_logged_model_loads_with_both_flavours_signature_and_example(fitted):
    run, model, inputs = fitted["run"], fitted["model"], fitted["val"][0]
    uri = f"{run.info.artifact_uri}/model"
    model.eval()
    with torch.no_grad():
        expected = model(inputs).numpy()
    assert np.array_equal(mlflow.pytorch.load_model(uri).eval()(inputs).detach().numpy(), expected)
    predicted = mlflow.pyfunc.load_model(uri).predict(inputs.numpy())
    assert np.allclose(np.asarray(predicted), expected, atol=1e-6)

    local = mlflow.artifacts.download_artifacts(uri)
    logged = Model.load(local)
    signature = logged.signature.to_dict()
    assert "[-1, 4]" in signature["inputs"] and "[-1, 1]" in signature["outputs"]
    assert '"float32"' in signature["inputs"]
    example = logged.load_input_example(local)
    train_inputs = data()[0][0]
    assert np.array_equal(np.asarray(example), train_inputs[:5].numpy())  # the first training rows


def test_the_complete_configuration_is_in_the_params(fitted):
    params = fitted["run"].data.params
    assert params["model.layers"] == ("Linear(4, 16), ReLU, Dropout(p=0.1, inplace=False), Linear(16, 8), Tanh, "
                                      "Linear(8, 1)")
    assert (params["model.sizes"], params["model.hidden_sizes"]) == ("4-16-8-1", "16,8")
    assert (params["model.activations"], params["model.dropout"]) == ("ReLU,Tanh", "0.1")
    assert (params["optimizer"], float(params["lr"]), float(params["optimizer.lr"])) == ("SGD", 0.01, 0.01)
    assert float(params["weight_decay"]) == 1e-4 and float(params["momentum"]) == 0.9
    assert (params["scheduler"], params["scheduler.class"]) == ("step", "StepLR")
    assert (params["batch_size"], params["epochs"], params["seed"]) == ("48", "5", "11")
    assert (params["patience"], params["early_stopping.monitor"]) == ("3", "val_loss")
    assert float(params["early_stopping.min_delta"]) == 1e-4


def test_steps_and_tags_use_the_epoch_as_shown(fitted, store):
    run, history = fitted["run"], fitted["history"]
    client = store["client"]
    assert run.data.tags["glassloop.best_epoch"] == str(history.best_epoch + 1)
    assert run.data.tags["glassloop.model_epoch"] == str(history.best_epoch + 1)  # restore_best's weights
    best = client.get_metric_history(run.info.run_id, "best_val_loss")
    assert [m.step for m in best] == [history.best_epoch + 1]
    csv_epochs = [int(line.split(",")[0]) for line in history.to_csv().splitlines()[1:]]
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_loss")) == csv_epochs


def test_baselines_are_sibling_runs_with_the_same_metric_names(fitted, store):
    logger, run = fitted["logger"], fitted["run"]
    ids = logger.log_baselines({"mean": {"val_loss": 0.25, "model": "DummyRegressor"},
                                "ridge": {"val_loss": 0.125}}, params={"split": "first 80%"})
    client = store["client"]
    for name, value in (("mean", 0.25), ("ridge", 0.125)):
        sibling = client.get_run(ids[name])
        assert sibling.info.status == "FINISHED" and sibling.info.run_name == f"baseline-{name}"
        assert sibling.data.metrics == {"val_loss": value}  # the network's metric name, comparable in the UI
        assert sibling.data.tags["mlflow.parentRunId"] == run.info.run_id
        assert sibling.data.params["split"] == "first 80%"
    assert client.get_run(ids["mean"]).data.params["model"] == "DummyRegressor"
    with pytest.raises(ConfigError, match="expected a dict name"):
        logger.log_baselines([("ridge", 0.1)])
    with pytest.raises(ConfigError, match="after gl.fit"):
        gl.MLflowLogger(tracking_uri=store["uri"]).log_baselines({"ridge": {"val_loss": 0.1}})


def bad_fits() -> dict[str, Any]:
    train, val = data()
    wide = (torch.rand(40, 5), torch.rand(40, 1))
    return {
        "EarlyStopping monitors val_loss without validation data": lambda logger: gl.fit(
            network(), train, epochs=2, verbose=False, callbacks=[gl.EarlyStopping(monitor="val_loss"), logger]),
        "5 input features for a 4-feature model": lambda logger: gl.fit(
            network(), wide, epochs=2, verbose=False, callbacks=[logger]),
        "an unknown loss": lambda logger: gl.fit(network(), train, val, loss="msee", verbose=False,
                                                  callbacks=[logger]),
    }


@pytest.mark.parametrize("case", list(bad_fits()))
def test_bad_input_creates_no_store_and_prints_no_mlflow_lines(case, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logger = gl.MLflowLogger(experiment="bad input")  # MLflow's default: sqlite:///<cwd>/mlflow.db
    with pytest.raises((GlassloopError, RuntimeError)):
        bad_fits()[case](logger)
    assert list(Path(tmp_path).iterdir()) == []  # no mlflow.db, no mlruns/, no lock
    assert logger.run_id is None and "mlflow" not in capfd.readouterr().err.lower()


@pytest.mark.parametrize(("options", "message"), [
    ({"tracking_uri": f"sqlite:///{__file__}/mlflow.db"}, "is a file"),
    ({"tracking_uri": f"sqlite:///{Path(__file__).parent}"}, "names a folder"),
    ({"tracking_uri": ""}, "is not a URI"),
    ({"experiment": ""}, "non-empty name"),
    ({"flush_seconds": -1}, "number >= 0"),
])
def test_bad_logger_options_are_one_line_errors(options, message):
    with pytest.raises(ConfigError, match=message) as error:
        gl.MLflowLogger(**options)
    assert "\n" not in str(error.value)
