"""The logged MLflow model stands alone (raw rows in, `glassloop predict`'s columns out), the network run's record
is complete, baselines from Python, --impute and --class-weight against scikit-learn / torch references."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from glassloop import cli
from glassloop.tabular import datasets
from glassloop.tabular.data import balanced_class_weights, prepare

CROP = datasets.path("crop")
CROP_FEATURES = "rainfall_mm,mean_temp_c,sun_hours,fertiliser_kg_ha,soil_moisture_pct,farm"


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def classes_table(path: Path) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 2))
    score = x[:, 0] + 0.5 * x[:, 1]
    label = np.where(score < -0.5, "low", np.where(score < 0.5, "mid", "high"))
    pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "label": label}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["crop", "classes"])
def test_pyfunc_model_on_raw_rows_equals_glassloop_predict(tmp_path, kind: str) -> None:
    import mlflow
    import mlflow.pyfunc
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    if kind == "crop":
        data, extra = CROP, ["--target", "yield_t_ha", "--time-column", "date", "--features", CROP_FEATURES]
    else:
        data, extra = classes_table(tmp_path / "c.csv"), ["--target", "label", "--hidden", "16", "--lr", "0.03"]
    code, _, stderr = run("fit", str(data), "--out", str(tmp_path / "run"), *extra, "--epochs", "8",
                          "--tracking-uri", uri, "--experiment", "model-test", "--baselines", "linear")
    assert code == 0, stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    model_uri = summary["mlflow"]["model_uri"]
    code, _, stderr = run("predict", str(tmp_path / "run"), str(data), "--out", str(tmp_path / "p.csv"))
    assert code == 0, stderr
    expected = pd.read_csv(tmp_path / "p.csv")
    raw = pd.read_csv(data)  # the raw table: text columns (farm, date) included
    mlflow.set_tracking_uri(uri)  # models:/ URIs resolve through the store that holds them
    try:
        got = mlflow.pyfunc.load_model(model_uri).predict(raw)
    finally:
        mlflow.set_tracking_uri(None)  # leave MLflow's global state as other tests expect it
    prediction = [c for c in expected.columns if c.startswith(("predicted_", "probability_"))]
    assert list(got.columns) == prediction
    for column in prediction:
        if not pd.api.types.is_numeric_dtype(expected[column]):
            assert (got[column].astype(str) == expected[column].astype(str)).all()
        else:
            np.testing.assert_allclose(got[column].to_numpy(float), expected[column].to_numpy(float), rtol=1e-5,
                                       atol=1e-5)
    params = MlflowClient(tracking_uri=uri).get_run(summary["mlflow"]["run_id"]).data.params
    for key in ("model.layer_sizes", "model.activation", "model.dropout", "train.optimizer", "train.lr",
                "train.weight_decay", "train.scheduler", "train.batch_size", "train.epochs", "train.patience",
                "train.seed", "features", "target", "task", "split.kind", "split.boundary", "data.file",
                "data.sha256", "data.rows", "data.train_rows", "data.val_rows"):
        assert key in params, key
    assert params["data.file"] == Path(data).name and len(params["data.sha256"]) == 64
    if kind == "crop":
        assert params["split.kind"] == "temporal" and "validate from" in params["split.boundary"]
        assert params["model.layer_sizes"] == "9-64-64-1"


def test_baselines_from_python_beside_a_gl_fit_run(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    import glassloop as gl
    from glassloop.tabular.baselines import compare_baselines

    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(200, 3)), dtype=torch.float32)
    y = (x @ torch.tensor([1.0, -1.0, 0.5])).unsqueeze(1) + 0.05 * torch.randn(200, 1)
    train, val = (x[:160], y[:160]), (x[160:], y[160:])
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = gl.MLflowLogger(experiment="py", tracking_uri=uri)
    gl.fit(model, train, val, epochs=3, callbacks=[logger], verbose=False, progress=False)
    result = compare_baselines(train, val, model=model, logger=logger)
    assert set(result["baselines"]) == {"linear", "forest"} and result["verdict"]["metric"] == "val_mse"
    client = MlflowClient(tracking_uri=uri)
    for name, run_id in result["mlflow"]["baseline_run_ids"].items():
        child = client.get_run(run_id)
        assert child.data.tags["mlflow.parentRunId"] == logger.run_id
        assert child.data.metrics["val_mse"] == pytest.approx(result["baselines"][name]["val_mse"])
    assert client.get_run(logger.run_id).data.metrics["val_mse"] == pytest.approx(result["network"]["val_mse"])


def holes(frame: pd.DataFrame, column: str, rows: list[int]) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[rows, column] = np.nan
    return frame


@pytest.mark.parametrize("strategy", ["median", "mean", "most_frequent", "constant"])
def test_impute_uses_training_rows_only_as_simple_imputer(strategy: str) -> None:
    from sklearn.impute import SimpleImputer

    frame = holes(datasets.load("crop"), "rainfall_mm", [3, 7, 40, 45])
    prepared = prepare(frame, "yield_t_ha", ["rainfall_mm", "sun_hours"], split="temporal", time_column="date",
                       impute=strategy)
    train = frame.iloc[prepared.train_rows][["rainfall_mm", "sun_hours"]].to_numpy(float)
    reference = SimpleImputer(strategy=strategy, fill_value=0.0 if strategy == "constant" else None).fit(train)
    assert prepared.transform.imputer.values["rainfall_mm"] == pytest.approx(reference.statistics_[0])
    filled = reference.transform(frame[["rainfall_mm", "sun_hours"]].to_numpy(float))
    expected = (filled - filled[prepared.train_rows].mean(axis=0)) / filled[prepared.train_rows].std(axis=0)
    np.testing.assert_allclose(prepared.val_x, expected[prepared.val_rows].astype(np.float32), rtol=1e-5, atol=1e-6)


def test_impute_end_to_end_and_on_a_categorical_column(tmp_path) -> None:
    frame = holes(datasets.load("crop"), "sun_hours", [2, 30, 44])
    frame.to_csv(tmp_path / "holes.csv", index=False)
    common = ["--target", "yield_t_ha", "--no-mlflow", "--baselines", "linear", "--epochs", "2"]
    code, _, stderr = run("fit", str(tmp_path / "holes.csv"), "--out", str(tmp_path / "r0"), *common)
    assert code == 2 and "--impute" in stderr
    code, _, stderr = run("fit", str(tmp_path / "holes.csv"), "--out", str(tmp_path / "bad"), *common,
                          "--features", "sun_hours,farm", "--impute", "median")
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "categorical column 'farm'" in stderr
    assert not (tmp_path / "bad").exists()
    code, _, stderr = run("fit", str(tmp_path / "holes.csv"), "--out", str(tmp_path / "run"), *common,
                          "--impute", "mean")
    assert code == 0, stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["options"]["impute"] == "mean" and "sun_hours" in config["transform"]["imputer"]["values"]
    code, stdout, stderr = run("predict", str(tmp_path / "run"), str(tmp_path / "holes.csv"))
    assert code == 0, stderr
    assert pd.read_csv(io.StringIO(stdout))["predicted_yield_t_ha"].notna().all()


def test_streamed_impute_matches_in_memory(tmp_path) -> None:
    from glassloop.tabular.streaming import scan_parquet

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(5, 2, 3000), "b": rng.uniform(size=3000)})
    frame["y"] = frame["a"] - frame["b"]
    frame.loc[rng.choice(3000, 300, replace=False), "a"] = np.nan
    frame.to_parquet(tmp_path / "t.parquet", row_group_size=250)
    streamed = scan_parquet(tmp_path / "t.parquet", "y", ["a", "b"], impute="mean", seed=2)
    train = ~streamed.split.is_val(0, frame)
    mean = frame.loc[train, "a"].mean()
    assert streamed.transform.imputer.values["a"] == pytest.approx(mean, rel=1e-12)
    filled = frame.loc[train, "a"].fillna(mean)
    assert streamed.transform.scaler.mean[0] == pytest.approx(filled.mean(), rel=1e-12)
    assert streamed.transform.scaler.std[0] == pytest.approx(filled.std(ddof=0), rel=1e-10)
    median = scan_parquet(tmp_path / "t.parquet", "y", ["a", "b"], impute="median", seed=2).transform.imputer
    assert median.sample_rows == int(train.sum()) and median.values["a"] == pytest.approx(
        frame.loc[train, "a"].median())


def test_class_weight_balanced_is_cross_entropy_with_sklearn_weights(tmp_path) -> None:
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0] * 30 + [1] * 10 + [2] * 5)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    np.testing.assert_allclose(balanced_class_weights(labels, 3), expected)
    data = classes_table(tmp_path / "c.csv")
    code, _, stderr = run("fit", str(data), "--target", "label", "--out", str(tmp_path / "run"), "--no-mlflow",
                          "--baselines", "none", "--epochs", "2", "--class-weight", "balanced")
    assert code == 0, stderr
    from glassloop.tabular.data import split_rows
    from glassloop.tabular.record import read_run
    from glassloop.tabular.runs import loss_of

    _, record, raw = read_run(str(tmp_path / "run"))
    frame = pd.read_csv(data)
    train_rows, _, _ = split_rows(frame, "random", 0.2, 0)  # the weights come from the training rows only
    index = {label: i for i, label in enumerate(raw["transform"]["classes"])}
    counts = frame["label"].iloc[train_rows].map(index).to_numpy()
    reference = compute_class_weight("balanced", classes=np.arange(3), y=counts)
    np.testing.assert_allclose(raw["model"]["class_weight"], reference)
    loss = loss_of(record)
    assert isinstance(loss, torch.nn.CrossEntropyLoss)
    np.testing.assert_allclose(loss.weight.numpy(), reference, rtol=1e-6)
    code, _, stderr = run("fit", str(CROP), "--target", "yield_t_ha", "--out", str(tmp_path / "reg"), "--no-mlflow",
                          "--class-weight", "balanced")
    assert code == 2 and "classification" in stderr and not (tmp_path / "reg").exists()
