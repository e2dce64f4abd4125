"""Streamed Parquet (glassloop.tabular.streaming): every training row once per epoch, a disjoint split, seeded and
reproducible approximate shuffle, the streamed scaler equal to the in-memory one, and the CLI end to end.
Memory flatness is measured by bench/streaming.py, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from glassloop import cli
from glassloop.errors import DataError
from glassloop.tabular import streaming
from glassloop.tabular.data import Scaler, classification_metrics, regression_metrics
from glassloop.tabular.streaming import (
    ParquetBatches,
    RunningMoments,
    StreamMetrics,
    scan_parquet,
    should_stream,
)

N, GROUP = 5000, 500


def write_table(path: Path, n: int = N, group: int = GROUP, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "rid": np.arange(n, dtype=np.float64),  # a feature that names its row, to follow rows through batches
        "a": rng.normal(3.0, 2.0, n).astype(np.float32),
        "b": rng.uniform(-1, 1, n),
        "t": np.arange(n) // 2,  # sorted, with ties
    })
    frame["y"] = 2 * frame["a"] - frame["b"] + rng.normal(0, 0.1, n)
    frame["label"] = np.where(frame["b"] > 0.3, "high", np.where(frame["b"] < -0.3, "low", "mid"))
    frame.to_parquet(path, row_group_size=group)
    return frame


@pytest.fixture
def table(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    path = tmp_path / "table.parquet"
    return path, write_table(path)


def row_ids(batches, transform) -> list[np.ndarray]:
    """The `rid` of every row of every batch, recovered by undoing the scaling."""
    column = transform.features.index("rid")
    mean, std = transform.scaler.mean[column], transform.scaler.std[column]
    return [np.rint(inputs[:, column].double().numpy() * std + mean).astype(np.int64) for inputs, _ in batches]


def batches(prepared, part: str = "train", seed: int = 0, shuffle: bool = True, batch_size: int = 64,
            epoch: int = 0) -> ParquetBatches:
    return ParquetBatches(prepared.path, prepared.transform, batch_size, prepared.split, part, seed=seed,
                          shuffle=shuffle, epoch=epoch)


def test_every_training_row_once_per_epoch_and_split_disjoint(table) -> None:
    path, frame = table
    prepared = scan_parquet(path, "y", features=["rid", "a", "b"], seed=7)
    train = batches(prepared, batch_size=64)
    val = batches(prepared, "val", shuffle=False, batch_size=100)
    expected_val = np.flatnonzero(prepared.split.is_val(0, frame))
    expected_train = np.setdiff1d(np.arange(N), expected_val)
    assert 0.17 * N < len(expected_val) < 0.23 * N  # the hash split keeps about val_fraction
    for _ in range(2):  # two epochs, each a permutation of exactly the training rows
        epoch = list(train)
        ids = np.concatenate(row_ids(epoch, prepared.transform))
        assert len(ids) == len(expected_train) == prepared.split_info["train_rows"]
        np.testing.assert_array_equal(np.sort(ids), expected_train)
        sizes = [len(inputs) for inputs, _ in epoch]
        assert all(size == 64 for size in sizes[:-1]) and 0 < sizes[-1] <= 64
        assert len(epoch) == len(train)
    val_ids = np.concatenate(row_ids(list(val), prepared.transform))
    np.testing.assert_array_equal(val_ids, expected_val)  # file order, every validation row, no training row
    assert not set(val_ids) & set(ids)
    # targets travel with their rows: standardised y of each batch row equals the table's
    inputs, targets = next(iter(batches(prepared, seed=3)))
    rid = row_ids([(inputs, targets)], prepared.transform)[0]
    scaler = prepared.transform.target_scaler
    np.testing.assert_allclose(targets[:, 0].numpy(), scaler.transform(frame["y"].to_numpy()[rid, None])[:, 0],
                               rtol=1e-5, atol=1e-5)
    assert inputs.dtype == torch.float32 and targets.shape == (len(inputs), 1)


def test_shuffle_differs_per_epoch_reproducible_per_seed(table) -> None:
    path, _ = table
    prepared = scan_parquet(path, "y", features=["rid", "a", "b"])
    first = batches(prepared, seed=1)
    e0, e1 = (np.concatenate(row_ids(list(first), prepared.transform)) for _ in range(2))
    assert not np.array_equal(e0, e1)
    # rows move across row groups' boundaries: the first batch is not one row group's rows in file order
    assert not np.array_equal(e0[:64], np.sort(e0[:64]))
    again = batches(prepared, seed=1)
    np.testing.assert_array_equal(np.concatenate(row_ids(list(again), prepared.transform)), e0)
    np.testing.assert_array_equal(np.concatenate(row_ids(list(again), prepared.transform)), e1)
    resumed = batches(prepared, seed=1, epoch=1)  # a resumed run starts at latest.pt's epoch
    np.testing.assert_array_equal(np.concatenate(row_ids(list(resumed), prepared.transform)), e1)
    other = batches(prepared, seed=2)
    assert not np.array_equal(np.concatenate(row_ids(list(other), prepared.transform)), e0)
    ordered = batches(prepared, shuffle=False)
    ids = np.concatenate(row_ids(list(ordered), prepared.transform))
    np.testing.assert_array_equal(ids, np.sort(ids))


def test_streamed_scaler_equals_in_memory(table) -> None:
    path, frame = table
    prepared = scan_parquet(path, "y", features=["a", "b", "rid"], seed=4)
    train = ~prepared.split.is_val(0, frame)
    inputs = Scaler.fit(frame.loc[train, ["a", "b", "rid"]].to_numpy())
    np.testing.assert_allclose(prepared.transform.scaler.mean, inputs.mean, rtol=1e-12)
    np.testing.assert_allclose(prepared.transform.scaler.std, inputs.std, rtol=1e-10)
    target = Scaler.fit(frame.loc[train, "y"].to_numpy())
    np.testing.assert_allclose(prepared.transform.target_scaler.mean, target.mean, rtol=1e-12)
    np.testing.assert_allclose(prepared.transform.target_scaler.std, target.std, rtol=1e-10)


def test_running_moments_stable_with_large_offset() -> None:
    rng = np.random.default_rng(0)
    values = 1e9 + rng.normal(0, 1e-3, size=(10_000, 2))
    moments = RunningMoments()
    for chunk in np.array_split(values, 37):
        moments.update(chunk)
    scaler = moments.scaler()
    np.testing.assert_allclose(scaler.std, values.std(axis=0), rtol=1e-4)
    np.testing.assert_allclose(scaler.mean, values.mean(axis=0), rtol=1e-14)
    # the textbook one-pass formula E[x^2] - E[x]^2 loses every digit here: the merge is what makes it work
    naive = np.sqrt(np.abs((values**2).mean(axis=0) - values.mean(axis=0) ** 2))
    assert np.all(np.abs(naive - values.std(axis=0)) > 0.5 * values.std(axis=0))


def test_temporal_split_is_strictly_later_and_needs_sorted_time(table, tmp_path) -> None:
    path, frame = table
    prepared = scan_parquet(path, "y", features=["rid", "a"], split="temporal", time_column="t", val_fraction=0.25)
    is_val = prepared.split.is_val(0, frame)
    assert frame["t"][is_val].min() > frame["t"][~is_val].max()
    assert is_val.sum() == prepared.split_info["val_rows"] == 1250
    ids = np.concatenate(row_ids(list(batches(prepared)), prepared.transform))
    assert ids.max() < N - 1250
    shuffled = tmp_path / "shuffled.parquet"
    frame.sample(frac=1.0, random_state=0).to_parquet(shuffled, row_group_size=GROUP)
    with pytest.raises(DataError, match="not sorted"):
        scan_parquet(shuffled, "y", split="temporal", time_column="t")


def test_classification_targets_and_metrics(table) -> None:
    path, frame = table
    prepared = scan_parquet(path, "label", features=["a", "b"], seed=0)
    assert prepared.transform.task == "classification"
    assert prepared.transform.classes == ["high", "low", "mid"]
    inputs, targets = next(iter(batches(prepared)))
    assert targets.dtype == torch.int64 and targets.shape == (len(inputs),)
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 1000)
    probabilities = rng.dirichlet(np.ones(3), 1000)
    streamed = StreamMetrics("classification")
    for part in np.array_split(np.arange(1000), 7):
        streamed.update(truth[part], probabilities[part])
    assert streamed.result() == pytest.approx(classification_metrics(truth, probabilities))
    predictions = rng.normal(size=1000)
    streamed = StreamMetrics("regression")
    for part in np.array_split(np.arange(1000), 7):
        streamed.update(truth[part], predictions[part])
    assert streamed.result() == pytest.approx(regression_metrics(truth, predictions))


def test_when_to_stream(table, tmp_path) -> None:
    path, frame = table
    assert not should_stream(path, False, None)  # small: in memory
    assert should_stream(path, False, 0.001)  # bigger than 1 kB
    assert should_stream(path, True, None)
    csv = tmp_path / "table.csv"
    frame.to_csv(csv, index=False)
    assert not should_stream(csv, False, 0.0)
    code = cli.main(["fit", str(csv), "--target", "y", "--out", str(tmp_path / "never"), "--stream", "--no-mlflow"])
    assert code == 2 and not (tmp_path / "never").exists()


def test_bad_streamed_input_is_refused_before_out(table, tmp_path, capsys, monkeypatch) -> None:
    path, frame = table
    monkeypatch.setattr(streaming, "HEAD_ROWS", GROUP)  # so the NaN below is past the head, found by the scan
    frame = frame.assign(colour=np.where(frame["b"] > 0, "red", "blue"))
    frame.loc[4321, "a"] = np.nan  # in row group 8: found by the scan, not by the head
    broken = tmp_path / "broken.parquet"
    frame.to_parquet(broken, row_group_size=GROUP)
    out = tmp_path / "run"
    assert cli.main(["fit", str(broken), "--target", "y", "--features", "rid,b,colour", "--out", str(out),
                     "--stream", "--no-mlflow"]) == 2
    assert "categorical" in capsys.readouterr().err and not out.exists()
    assert cli.main(["fit", str(broken), "--target", "y", "--features", "rid,a", "--out", str(out), "--stream",
                     "--no-mlflow"]) == 2
    error = capsys.readouterr().err
    assert "missing values" in error and "row group 8" in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "glassloop", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def test_fit_stream_predict_resume_end_to_end(table, tmp_path) -> None:
    path, frame = table
    result = run_cli("fit", str(path), "--target", "y", "--features", "a,b", "--out", "run", "--stream",
                     "--no-mlflow", "--epochs", "2", "--batch-size", "128", "--baselines", "linear", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    assert (run / "best.pt").is_file() and (run / "latest.pt").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["split"]["streamed"] and summary["network"]["epochs_run"] == 2
    assert summary["streaming"]["row_groups"] == N // GROUP
    assert summary["baselines"]["linear"]["fitted_on_rows"] == summary["split"]["train_rows"]
    assert summary["network"]["val_mse"] < np.var(frame["y"])  # it learned something
    config = json.loads((run / "config.json").read_text())
    assert config["streaming"]["forced"] is True

    streamed = run_cli("predict", "run", str(path), "--stream", "--out", "streamed.csv", cwd=tmp_path)
    in_memory = run_cli("predict", "run", str(path), "--out", "memory.csv", cwd=tmp_path)
    assert streamed.returncode == 0 and in_memory.returncode == 0, streamed.stderr + in_memory.stderr
    a, b = pd.read_csv(tmp_path / "streamed.csv"), pd.read_csv(tmp_path / "memory.csv")
    assert len(a) == N
    np.testing.assert_allclose(a["predicted_y"], b["predicted_y"], rtol=1e-6)

    resumed = run_cli("resume", "run", "--no-mlflow", cwd=tmp_path)  # finished run: re-streams, same transform
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "summary.json").read_text())["network"]["epochs_run"] == 2
