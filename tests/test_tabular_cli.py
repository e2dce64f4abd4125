"""`glassloop fit | resume | predict` end to end: the real CLI in subprocesses on the shipped datasets, and a
property test that throws malformed tables and options at it (exit 2, one line, nothing written)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glassloop import cli
from glassloop.tabular import datasets

CROP = datasets.path("crop")
CROP_FEATURES = "rainfall_mm,mean_temp_c,sun_hours,fertiliser_kg_ha,soil_moisture_pct,farm"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "glassloop", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=180)


def run_in_process(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_crop_end_to_end(tmp_path) -> None:
    """One real `glassloop fit` subprocess on crop (temporal split, MLflow in a temporary SQLite store), then its
    summary, its MLflow runs and `predict` are checked. One test, so that `pytest -n 2` trains it only once."""
    crop_run = fit_crop(tmp_path)
    check_crop_summary(crop_run)
    check_crop_mlflow(crop_run)
    check_crop_predict(crop_run)


def fit_crop(root: Path) -> dict:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    result = run_cli("fit", str(CROP), "--target", "yield_t_ha", "--time-column", "date", "--features",
                     CROP_FEATURES, "--out", "run", "--tracking-uri", uri, "--experiment", "crop-test",
                     "--seed", "3", cwd=root)
    assert result.returncode == 0, result.stderr
    return {"root": root, "run": root / "run", "uri": uri, "stdout": result.stdout,
            "summary": json.loads((root / "run" / "summary.json").read_text())}


def check_crop_summary(crop_run: dict) -> None:
    summary, run = crop_run["summary"], crop_run["run"]
    for name in ("config.json", "summary.json", "history.csv", "best.pt", "latest.pt"):
        assert (run / name).is_file(), name
    assert summary["task"] == "regression"
    assert summary["split"]["method"] == "temporal"
    assert summary["split"]["train_rows"] == 38 and summary["split"]["val_rows"] == 10
    assert summary["split"]["train_until"] < summary["split"]["val_from"]
    assert set(summary["baselines"]) == {"linear", "forest"}
    network = summary["network"]
    assert np.isfinite(network["val_mse"]) and network["val_mae"] > 0 and network["stop_reason"]
    verdict = summary["verdict"]
    best = min(summary["baselines"], key=lambda name: summary["baselines"][name]["val_mse"])
    assert verdict["best_baseline"] == best and verdict["metric"] == "val_mse"
    assert verdict["network_better"] == (network["val_mse"] < summary["baselines"][best]["val_mse"])
    # One comparison table and the verdict line on stdout.
    assert "network (MLP)" in crop_run["stdout"] and "forest (RandomForestRegressor)" in crop_run["stdout"]
    assert verdict["text"] in crop_run["stdout"]
    config = json.loads((run / "config.json").read_text())
    assert config["transform"]["categories"] == {"farm": ["hill", "north", "river", "valley"]}
    assert len(config["transform"]["scaler"]["mean"]) == config["model"]["inputs"] == 9
    assert config["model"]["loss"] == "mse"
    history = pd.read_csv(run / "history.csv")
    assert len(history) == network["epochs_run"] and {"train_loss", "val_loss"} <= set(history.columns)


def check_crop_mlflow(crop_run: dict) -> None:
    from mlflow.tracking import MlflowClient

    summary = crop_run["summary"]
    client = MlflowClient(tracking_uri=crop_run["uri"])
    experiment = client.get_experiment_by_name("crop-test")
    runs = client.search_runs([experiment.experiment_id])
    parent_id = summary["mlflow"]["run_id"]
    by_id = {run.info.run_id: run for run in runs}
    assert parent_id in by_id and len(runs) == 3
    parent = by_id[parent_id]
    assert parent.data.metrics["val_mse"] == pytest.approx(summary["network"]["val_mse"])
    for name, run_id in summary["mlflow"]["baseline_run_ids"].items():
        run = by_id[run_id]
        assert run.data.tags["glassloop.parent_run_id"] == parent_id
        assert run.data.metrics["val_mse"] == pytest.approx(summary["baselines"][name]["val_mse"])
        assert run.data.params["split"] == "temporal"


def check_crop_predict(crop_run: dict) -> None:
    root, run = crop_run["root"], crop_run["run"]
    code, _, stderr = run_in_process("predict", str(run), str(CROP), "--out", str(root / "preds.csv"))
    assert code == 0, stderr
    predictions = pd.read_csv(root / "preds.csv")
    frame = datasets.load("crop")
    assert len(predictions) == 48 and (predictions["date"] == frame["date"]).all()
    # The validation rows' predictions reproduce the network's reported val MSE: same weights, same transform.
    validation = pd.to_datetime(frame["date"]) >= pd.Timestamp(crop_run["summary"]["split"]["val_from"])
    error = predictions.loc[validation, "predicted_yield_t_ha"] - frame.loc[validation, "yield_t_ha"]
    assert float((error**2).mean()) == pytest.approx(crop_run["summary"]["network"]["val_mse"], rel=1e-5)
    assert json.loads((run / "config.json").read_text())["data"] == str(CROP.resolve())


def test_classification_reports_accuracy_and_predicts_class_names(tmp_path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 2))
    score = x[:, 0] + 0.5 * x[:, 1]
    label = np.where(score < -0.5, "low", np.where(score < 0.5, "mid", "high"))
    pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "note": "ok", "label": label}).to_csv(tmp_path / "t.csv", index=False)
    code, stdout, stderr = run_in_process("fit", str(tmp_path / "t.csv"), "--target", "label", "--out",
                                          str(tmp_path / "cls"), "--no-mlflow", "--lr", "0.03", "--epochs", "60",
                                          "--hidden", "32")
    assert code == 0, stderr
    assert "val_accuracy" in stdout and "val_log_loss" in stdout
    summary = json.loads((tmp_path / "cls" / "summary.json").read_text())
    config = json.loads((tmp_path / "cls" / "config.json").read_text())
    assert summary["task"] == "classification" and summary["verdict"]["metric"] == "val_accuracy"
    assert config["model"]["loss"] == "cross_entropy" and config["model"]["outputs"] == 3
    assert config["transform"]["classes"] == ["high", "low", "mid"]
    assert summary["network"]["val_accuracy"] >= 0.8 and summary["network"]["val_log_loss"] > 0
    assert set(summary["baselines"]["linear"]) == {"model", "val_accuracy", "val_log_loss"}
    code, stdout, stderr = run_in_process("predict", str(tmp_path / "cls"), str(tmp_path / "t.csv"))
    assert code == 0, stderr
    predictions = pd.read_csv(io.StringIO(stdout))
    assert set(predictions["predicted_label"]) <= {"low", "mid", "high"}
    assert np.allclose(predictions[["probability_high", "probability_low", "probability_mid"]].sum(axis=1), 1)
    assert (predictions["predicted_label"] == predictions["label"]).mean() >= 0.8


class InterruptAfter:
    """Raises KeyboardInterrupt at the end of an epoch, before the checkpoint band runs: like a kill mid-run."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, state) -> None:
        if state.epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def test_resume_continues_to_the_same_weights(tmp_path, monkeypatch) -> None:
    import glassloop as gl

    house = str(datasets.path("house"))
    common = ["--target", "price_k", "--no-mlflow", "--baselines", "linear", "--val-fraction", "0.34",
              "--hidden", "none", "--lr", "0.05", "--patience", "1000", "--batch-size", "1", "--epochs", "12"]
    code, _, stderr = run_in_process("fit", house, "--out", str(tmp_path / "whole"), *common)
    assert code == 0, stderr
    real_fit = gl.fit
    monkeypatch.setattr(gl, "fit", lambda *a, callbacks=(), **k: real_fit(*a, callbacks=[*callbacks,
                                                                                         InterruptAfter(6)], **k))
    code, _, stderr = run_in_process("fit", house, "--out", str(tmp_path / "part"), *common)
    assert code != 0 and (tmp_path / "part" / "latest.pt").is_file() and not (tmp_path / "part" / "summary.json").exists()
    monkeypatch.setattr(gl, "fit", real_fit)
    code, _, stderr = run_in_process("resume", str(tmp_path / "part"))
    assert code == 0, stderr
    assert len(pd.read_csv(tmp_path / "part" / "history.csv")) == 12
    whole = gl.load_checkpoint(tmp_path / "whole" / "latest.pt")["model"]
    part = gl.load_checkpoint(tmp_path / "part" / "latest.pt")["model"]
    for key, value in whole.items():
        assert torch.equal(value, part[key]), key
    whole_summary = json.loads((tmp_path / "whole" / "summary.json").read_text())
    part_summary = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert part_summary["network"] == whole_summary["network"] | {"stop_reason": part_summary["network"]["stop_reason"]}


def test_existing_run_is_never_touched(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text("{}")
    code, _, stderr = run_in_process("fit", str(CROP), "--target", "yield_t_ha", "--out", str(run), "--no-mlflow")
    assert code == 2 and "already exists" in stderr and "resume" in stderr
    assert [p.name for p in run.iterdir()] == ["summary.json"] and (run / "summary.json").read_text() == "{}"


@pytest.mark.parametrize(("content", "extra", "message"), [
    ("farm,yield\nV\xe9ronique,1\n".encode("latin-1"), [], "UTF-8"),
    (b"x,y\n1,2\n2,4\n3,7\n", ["--config", "bad.toml"], "unknown key 'lrr'"),
])
def test_bad_input_in_a_subprocess(tmp_path, content: bytes, extra: list[str], message: str) -> None:
    (tmp_path / "bad.toml").write_text("lrr = 0.1\n")
    (tmp_path / "t.csv").write_bytes(content)
    result = run_cli("fit", "t.csv", "--target", "y", "--out", "out", "--no-mlflow", *extra, cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- property test
def _valid_frame(draw, rows: int) -> pd.DataFrame:
    values = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=rows, max_size=rows))
    frame = pd.DataFrame({"x": values, "z": np.arange(rows, dtype=float)})
    frame["y"] = frame["x"] * 2 + np.arange(rows)
    frame["when"] = pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d")
    return frame


BAD_CONFIGS = [
    "lrr = 0.1\n", "epochs = 10.5\n", "lr = -0.001\n", "hidden = [64, 0]\n", 'batch_size = "32"\n',
    "split = 'temporal'\n", "optimizer = 'adamax'\n", "baselines = ['linear', 'xgboost']\n", "lr = = 1\n",
    "[fit]\nepochs = 0\n", "val_fraction = 1\n", "patience = -3\n", "mlflow = 'no'\n", "lr = nan\n",
]
KINDS = [
    "empty", "header_only", "latin1", "garbage", "no_target", "nan_target", "constant_target", "single_row",
    "all_nan_column", "typo_in_numbers", "bad_time", "too_few_rows", "too_many_levels", "bad_flag", "bad_config",
    "unknown_flag", "text_target_regression",
]


@st.composite
def malformed_cases(draw, kind: str) -> tuple[bytes, list[str], str | None]:
    """(file bytes, extra CLI args, config TOML or None): every case is bad input of the given kind."""
    rows = draw(st.integers(6, 30))
    frame = _valid_frame(draw, rows)
    extra: list[str] = []
    config = None
    row = draw(st.integers(0, rows - 1))
    if kind == "empty":
        return b"", extra, config
    if kind == "header_only":
        return b"x,y,z\n", extra, config
    if kind == "latin1":
        frame.loc[row, "when"] = "caf\xe9"
        return frame.to_csv(index=False).encode("latin-1"), extra, config
    if kind == "garbage":
        return b"\xff\xfe\x00" + draw(st.binary(min_size=1, max_size=40)), extra, config
    if kind == "no_target":
        frame = frame.drop(columns="y")
    elif kind == "nan_target":
        frame.loc[row, "y"] = np.nan
    elif kind == "constant_target":
        frame["y"] = draw(st.floats(-5, 5, allow_nan=False))
    elif kind == "single_row":
        frame = frame.head(1)
    elif kind == "all_nan_column":
        frame["x"] = np.nan
    elif kind == "typo_in_numbers":
        frame["x"] = frame["x"].astype(str)
        frame.loc[row, "x"] = draw(st.sampled_from(["n/a?", "1,5", "12x", "--"]))
    elif kind == "bad_time":
        frame.loc[row, "when"] = draw(st.sampled_from(["yesterday", "2024-13-45", "??"]))
        extra = ["--time-column", "when"]
    elif kind == "too_few_rows":
        extra = ["--val-fraction", str(draw(st.sampled_from([0.9, 0.95])))]
        frame = frame.head(draw(st.integers(2, 9)))
    elif kind == "too_many_levels":
        frame = pd.concat([frame] * 4, ignore_index=True)  # >= 24 rows, each with its own id
        frame["id"] = [f"id{i}" for i in range(len(frame))]
        extra = ["--features", "x,id"]
    elif kind == "bad_flag":
        flag = draw(st.sampled_from(["--lr", "--epochs", "--batch-size", "--patience", "--val-fraction",
                                     "--dropout", "--weight-decay", "--clip", "--hidden"]))
        value = draw(st.sampled_from(["0", "-1", "-0.5", "abc", "1.5e400", "nan"]))
        if flag in ("--val-fraction", "--dropout") and value not in ("abc",):
            value = draw(st.sampled_from(["-0.1", "1.0", "2", "nan"]))
        if flag == "--weight-decay" and value == "0":
            value = "-1"
        extra = [flag, value]
    elif kind == "bad_config":
        config = draw(st.sampled_from(BAD_CONFIGS))
    elif kind == "unknown_flag":
        extra = [draw(st.sampled_from(["--learning-rate", "--hiden", "--split=sideways", "--task=ranking"])), "1"]
    elif kind == "text_target_regression":
        frame["y"] = [f"c{i % 3}" for i in range(rows)]
        extra = ["--task", "regression"]
    return frame.to_csv(index=False).encode("utf-8"), extra, config


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_input_is_one_line_exit_2_and_writes_nothing(kind: str) -> None:
    # Every kind is covered; hypothesis varies the table, the bad cell and the option within each kind.
    @settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=malformed_cases(kind), out_exists=st.booleans())
    def check(case, out_exists: bool) -> None:
        assert_rejected_cleanly(*case, out_exists)

    check()


@pytest.mark.parametrize("config", BAD_CONFIGS)
def test_every_bad_config_is_rejected_cleanly(config: str) -> None:
    table = pd.DataFrame({"x": np.arange(12.0), "y": np.arange(12.0) ** 2})
    assert_rejected_cleanly(table.to_csv(index=False).encode(), [], config, out_exists=False)


def assert_rejected_cleanly(content: bytes, extra: list[str], config: str | None, out_exists: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "t.csv").write_bytes(content)
        # Short, untracked runs in case something slipped through, except where the config sets the key
        # itself (flags override the file, so the flag would hide the bad value).
        safety = [] if config and "mlflow" in config else ["--no-mlflow"]
        safety += [] if config and "epochs" in config else ["--epochs", "3"]
        args = ["fit", str(root / "t.csv"), "--target", "y", "--out", str(root / "out"), *safety, *extra]
        if config is not None:
            (root / "fit.toml").write_text(config)
            args += ["--config", str(root / "fit.toml")]
        if out_exists:  # an empty directory may be reused; it must stay exactly as it was
            (root / "out").mkdir()
        before = sorted(p.name for p in root.iterdir())
        code, _, stderr = run_in_process(*args)
        assert code == 2, (extra, config, stderr)
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("glassloop fit: error: "), stderr
        assert "Traceback" not in stderr
        assert sorted(p.name for p in root.iterdir()) == before
        if out_exists:
            assert list((root / "out").iterdir()) == []


# ------------------------------------------------------------------------------------------- reviewer's gaps
# Each is bad input: exit 2, exactly one stderr line, no traceback, and nothing written or changed.
def assert_one_line(code: int, stderr: str, command: str) -> None:
    assert code == 2, stderr
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith(f"glassloop {command}: error: "), stderr
    assert "Traceback" not in stderr


def small_table(path: Path, features: int = 2) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, features))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(features)])
    frame["y"] = x @ np.arange(1.0, features + 1) + 0.1 * rng.normal(size=40)
    frame.to_csv(path, index=False)
    return path


SMALL_FIT = ["--target", "y", "--no-mlflow", "--baselines", "linear", "--hidden", "4", "--epochs", "2"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A finished run (2 epochs of a tiny MLP): copied by every test that edits it."""
    root = tmp_path_factory.mktemp("small")
    code, _, stderr = run_in_process("fit", str(small_table(root / "t.csv")), "--out", str(root / "run"), *SMALL_FIT)
    assert code == 0, stderr
    return root / "run"


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc (mkdir fails there even for root)")
@pytest.mark.parametrize("out", ["/proc/glassloop-test-run", "/proc/glassloop-test/a/b"])
def test_fit_out_that_mkdir_refuses_is_one_line(tmp_path, out: str) -> None:
    code, _, stderr = run_in_process("fit", str(small_table(tmp_path / "t.csv")), "--out", out, *SMALL_FIT)
    assert_one_line(code, stderr, "fit")
    assert out in stderr and "choose another --out" in stderr


@pytest.mark.parametrize("failing", ["config.json", "training"])
def test_fit_oserror_removes_every_directory_it_created(tmp_path, monkeypatch, failing: str) -> None:
    import glassloop as gl
    import glassloop.core.checkpoint

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if failing == "config.json":
        monkeypatch.setattr(glassloop.core.checkpoint, "write_file", full)
    else:
        monkeypatch.setattr(gl, "fit", full)
    table = small_table(tmp_path / "t.csv")
    code, _, stderr = run_in_process("fit", str(table), "--out", str(tmp_path / "a" / "b" / "run"), *SMALL_FIT)
    assert_one_line(code, stderr, "fit")
    assert "No space left on device" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]  # a/ and a/b/ went too


@pytest.mark.parametrize("extra", [
    ["--seed", "99999999999999999999"], ["--seed", str(2**32)], ["--seed", "-1"],
    ["--batch-size", "100000000000000000000"], ["--batch-size", "1e20"], ["--batch-size", "-5"],
    ["--epochs", "10000000"], ["--patience", str(2**70)], ["--lr", "1e300"], ["--weight-decay", "1e300"],
    ["--clip", "1e300"], ["--hidden", "65536,65536"], ["--hidden", ",".join(["8"] * 65)], ["--experiment", ""],
])
def test_huge_or_negative_numbers_are_refused_before_anything_is_written(extra: list[str]) -> None:
    table = pd.DataFrame({"x": np.arange(12.0), "y": np.arange(12.0) ** 2})
    for out_exists in (False, True):
        assert_rejected_cleanly(table.to_csv(index=False).encode(), extra, None, out_exists)


@pytest.mark.parametrize("out", ["/proc/glassloop-test.csv", "/dev/full", "DIR", "", "missing/p.csv",
                                 "RUN/config.json", "RUN/best.pt", "DATA"])
def test_predict_out_that_cannot_be_written_is_one_line(small_run, tmp_path, out: str) -> None:
    (tmp_path / "DIR").mkdir()
    table = small_run.parent / "t.csv"
    target = out.replace("RUN", str(small_run)).replace("DATA", str(table))
    if not target.startswith("/"):
        target = str(tmp_path / target) if target else ""
    before, table_before = snapshot(small_run), table.read_bytes()
    code, stdout, stderr = run_in_process("predict", str(small_run), str(table), "--out", target)
    assert_one_line(code, stderr, "predict")
    assert stdout == "" and snapshot(small_run) == before and table.read_bytes() == table_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIR"]


def test_predict_writes_atomically(small_run, tmp_path, monkeypatch) -> None:
    import glassloop.core.checkpoint

    table, target = small_run.parent / "t.csv", tmp_path / "preds.csv"
    real = glassloop.core.checkpoint.write_file

    def full(data: bytes, path: Path) -> None:  # the disk fills after half the bytes
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        temporary.write_bytes(data[: len(data) // 2])
        temporary.unlink()
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(glassloop.core.checkpoint, "write_file", full)
    code, _, stderr = run_in_process("predict", str(small_run), str(table), "--out", str(target))
    assert_one_line(code, stderr, "predict")
    assert "No space left on device" in stderr and list(tmp_path.iterdir()) == []
    monkeypatch.setattr(glassloop.core.checkpoint, "write_file", real)
    target.write_text("old\n")
    code, stdout, stderr = run_in_process("predict", str(small_run), str(table), "--out", str(target))
    assert code == 0, stderr
    assert len(pd.read_csv(target)) == 40 and [p.name for p in tmp_path.iterdir()] == ["preds.csv"]


def _edit(key: str, value):
    def apply(record: dict) -> None:
        *parents, last = key.split(".")
        for part in parents:
            record = record[part]
        if value is KeyError:
            del record[last]
        else:
            record[last] = value
    return apply


CORRUPT_CONFIGS = {
    "no data": _edit("data", KeyError),
    "no target": _edit("options.target", KeyError),
    "no options": _edit("options", KeyError),
    "epochs text": _edit("options.epochs", "x"),
    "seed huge": _edit("options.seed", 2**70),
    "options a list": _edit("options", []),
    "model inputs": _edit("model.inputs", 7),
    "model hidden text": _edit("model.hidden", "64"),
    "model huge": _edit("model.hidden", [65536, 65536]),
    "transform features": _edit("transform.features", KeyError),
    "transform scaler": _edit("transform.scaler", "x"),
    "mlflow": _edit("mlflow", 5),
    "not json": b"{not json",
    "binary": bytes(range(256)),
    "a list": b"[1, 2]",
}


@pytest.mark.parametrize("command", ["resume", "predict"])
@pytest.mark.parametrize("case", list(CORRUPT_CONFIGS))
def test_hand_edited_or_corrupt_config_json_is_one_line(small_run, tmp_path, command: str, case: str) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    edit = CORRUPT_CONFIGS[case]
    if isinstance(edit, bytes):
        (run / "config.json").write_bytes(edit)
    else:
        record = json.loads((run / "config.json").read_text())
        edit(record)
        (run / "config.json").write_text(json.dumps(record))
    before = snapshot(run)
    args = [command, str(run)] + ([str(small_run.parent / "t.csv")] if command == "predict" else [])
    code, stdout, stderr = run_in_process(*args)
    assert_one_line(code, stderr, command)
    assert "config.json" in stderr and stdout == "" and snapshot(run) == before


@pytest.mark.parametrize("name", ["best.pt", "latest.pt"])
def test_checkpoint_from_another_model_is_one_line(small_run, tmp_path, name: str) -> None:
    import shutil

    from glassloop.core.checkpoint import atomic_save, envelope

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    kind = name.removesuffix(".pt")
    atomic_save(envelope(kind, model=torch.nn.Linear(5, 3).state_dict(), finished=False), run / name)
    before = snapshot(run)
    command = "predict" if name == "best.pt" else "resume"
    args = [command, str(run)] + ([str(small_run.parent / "t.csv")] if command == "predict" else [])
    code, stdout, stderr = run_in_process(*args)
    assert_one_line(code, stderr, command)
    assert name in stderr and "does not match the model in config.json" in stderr
    assert stdout == "" and snapshot(run) == before


def test_resuming_a_finished_run_touches_nothing(small_run, tmp_path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()}
    code, stdout, stderr = run_in_process("resume", str(run))
    assert code == 0 and stderr == "", stderr
    assert "already finished (" in stdout and "nothing to resume" in stdout
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.iterdir()} == before


def test_fit_refuses_repeated_column_names(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("x,x,y\n" + "".join(f"{i},{i * 2},{i * 3}\n" for i in range(12)))
    code, _, stderr = run_in_process("fit", str(tmp_path / "t.csv"), "--out", str(tmp_path / "out"), *SMALL_FIT)
    assert_one_line(code, stderr, "fit")
    assert "'x' more than once" in stderr and not (tmp_path / "out").exists()
