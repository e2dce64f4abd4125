"""glassloop.tabular.data and glassloop.tabular.datasets: reading, validation, splits, scaling without leakage, baselines, config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glassloop.errors import ConfigError, DataError
from glassloop.tabular import data, datasets
from glassloop.tabular.datasets import make_crop

CROP_FEATURES = ["rainfall_mm", "mean_temp_c", "sun_hours", "fertiliser_kg_ha", "soil_moisture_pct"]


def one_line_error(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------------------------------- datasets
def test_crop_generator_is_deterministic_and_matches_the_shipped_csv() -> None:
    assert make_crop.to_csv(make_crop.generate()) == datasets.path("crop").read_text()


def test_crop_has_the_design_shape() -> None:
    frame = datasets.load("crop")
    assert len(frame) == 48
    assert frame["farm"].nunique() == 4 and set(frame["season"]) == {"spring", "autumn"}
    dates = pd.to_datetime(frame["date"])
    assert dates.is_monotonic_increasing and dates.dt.year.nunique() == 6
    assert frame[CROP_FEATURES + ["yield_t_ha"]].notna().all().all()
    # A real signal: temperature away from the 21 degree optimum costs yield.
    distance = (frame["mean_temp_c"] - 21).abs()
    assert np.corrcoef(distance, frame["yield_t_ha"])[0, 1] < -0.3


def test_house_is_lesson_002() -> None:
    frame = datasets.load("house")
    assert frame.to_dict("list") == {"size_ksqft": [1.5, 2.0, 2.5], "price_k": [300, 400, 500]}
    with pytest.raises(ConfigError):
        datasets.path("nope")


# ------------------------------------------------------------------------------------------- reading
def test_read_table_rejects_bad_files(tmp_path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        data.read_table(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        data.read_table(empty)
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    with pytest.raises(DataError, match="no data rows"):
        data.read_table(header)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("farm,yield\nV\xe9ronique,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8") as error:
        data.read_table(latin)
    assert "0xe9" in one_line_error(error)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match="Parquet"):
        data.read_table(broken)
    with pytest.raises(DataError, match="not a file"):
        data.read_table(tmp_path)


def test_read_table_parquet_and_bom(tmp_path) -> None:
    frame = datasets.load("crop")
    frame.to_parquet(tmp_path / "crop.parquet")
    assert data.read_table(tmp_path / "crop.parquet").equals(frame)
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfx,y\n1,2\n3,4\n")
    assert list(data.read_table(tmp_path / "bom.csv").columns) == ["x", "y"]


# ------------------------------------------------------------------------------------------- task, features
def test_task_inference() -> None:
    assert data.infer_task(pd.Series(["a", "b", "a"]))[0] == "classification"
    assert data.infer_task(pd.Series([0, 1, 1, 0, 1, 0]))[0] == "classification"
    assert data.infer_task(pd.Series([True, False, True]))[0] == "classification"
    assert data.infer_task(pd.Series([300, 400, 500]))[0] == "regression"  # lesson 002's prices stay numbers
    assert data.infer_task(pd.Series([0.5, 1.5, 0.5, 1.5]))[0] == "regression"


def test_features_default_numeric_and_one_hot_on_request() -> None:
    frame = datasets.load("crop")
    features, categories, skipped = data.choose_features(frame, "yield_t_ha", None, "date")
    assert features == CROP_FEATURES and categories == {} and skipped == ["farm", "season"]
    features, categories, _ = data.choose_features(frame, "yield_t_ha", CROP_FEATURES + ["farm"], "date")
    assert categories == {"farm": ["hill", "north", "river", "valley"]}
    prepared = data.prepare(frame, "yield_t_ha", CROP_FEATURES + ["farm"], split="temporal", time_column="date")
    assert prepared.transform.encoded_columns[-4:] == ["farm=hill", "farm=north", "farm=river", "farm=valley"]


def test_feature_problems_are_one_line_errors() -> None:
    frame = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [1.0, 2, 3, 5], "id": ["a", "b", "c", "d"],
                          "typo": ["1", "2", "x3", "4"], "empty": [np.nan] * 4})
    with pytest.raises(DataError, match="'typo' looks numeric but value 'x3'"):
        data.choose_features(frame, "y", ["x", "typo"])
    with pytest.raises(DataError, match="entirely empty"):
        data.choose_features(frame.drop(columns="typo"), "y", None)
    wide = pd.DataFrame({"id": [f"n{i}" for i in range(30)], "y": np.arange(30.0)})
    with pytest.raises(DataError, match="30 distinct values") as error:
        data.choose_features(wide, "y", ["id"])
    one_line_error(error)
    with pytest.raises(DataError, match="did you mean 'x'"):
        data.choose_features(frame, "y", ["xx"])
    with pytest.raises(ConfigError, match="includes the target"):
        data.choose_features(frame, "y", ["x", "y"])
    with pytest.raises(DataError, match="no feature columns"):
        data.choose_features(frame[["y", "id"]], "y", None)


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"x": [1.0, 2, 3], "y": [1.0, np.nan, 3]}), "1 missing values"),
    (pd.DataFrame({"x": [1.0, 2, 3], "y": [2.0, 2, 2]}), "constant"),
    (pd.DataFrame({"x": [1.0], "y": [2.0]}), "has 1 row"),
    (pd.DataFrame({"x": [1.0, 2, 3], "z": [1.0, 2, 3]}), "target column 'y' not found"),
    (pd.DataFrame({"x": [1.0, 2, 3, 4], "y": ["a", "a", "a", "a"]}), "single class"),
    (pd.DataFrame({"x": [1.0, 2, 3], "y": [1.0, 2, np.inf]}), "infinite"),
])
def test_bad_targets(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message) as error:
        data.prepare(frame, "y")
    one_line_error(error)


def test_regression_forced_on_text_target_is_refused() -> None:
    frame = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": ["a", "b", "a", "b"]})
    with pytest.raises(DataError, match="not numeric"):
        data.prepare(frame, "y", task="regression")


# ------------------------------------------------------------------------------------------- splits
def test_random_split_is_seeded_disjoint_and_complete() -> None:
    frame = pd.DataFrame({"x": np.arange(50.0)})
    train, val, _ = data.split_rows(frame, "random", 0.2, seed=7)
    again, _, _ = data.split_rows(frame, "random", 0.2, seed=7)
    other, _, _ = data.split_rows(frame, "random", 0.2, seed=8)
    assert len(val) == 10 and set(train).isdisjoint(val) and set(train) | set(val) == set(range(50))
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_temporal_split_on_crop_is_strictly_later() -> None:
    frame = datasets.load("crop").sample(frac=1.0, random_state=0)  # row order must not matter
    train, val, info = data.split_rows(frame, "temporal", 0.2, seed=0, time_column="date")
    dates = pd.to_datetime(frame["date"]).to_numpy()
    assert dates[train].max() < dates[val].min()
    assert len(val) == 10 and info["val_from"] > info["train_until"]


def test_temporal_split_keeps_ties_on_one_side() -> None:
    # 10 rows, 2 validation rows requested, but the boundary time 3 is shared by 4 rows: all go to validation.
    times = [1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    frame = pd.DataFrame({"t": times[::-1], "x": np.arange(10.0)})
    train, val, _ = data.split_rows(frame, "temporal", 0.2, seed=0, time_column="t")
    t = frame["t"].to_numpy()
    assert t[train].max() < t[val].min() and sorted(t[val]) == [3, 3, 3, 3]
    # If validation would swallow almost everything, the ties go to training instead.
    frame = pd.DataFrame({"t": [1, 2, 2, 2, 2, 2, 2, 2, 2, 3], "x": np.arange(10.0)})
    train, val, _ = data.split_rows(frame, "temporal", 0.2, seed=0, time_column="t")
    assert list(frame["t"].to_numpy()[val]) == [3] and len(train) == 9
    with pytest.raises(DataError, match="1 distinct value"):
        data.split_rows(pd.DataFrame({"t": [5] * 6}), "temporal", 0.2, seed=0, time_column="t")


def test_split_problems() -> None:
    frame = pd.DataFrame({"when": ["2024-01-01", "2024-02-01", "soon", "2024-04-01"], "x": [1.0, 2, 3, 4],
                          "y": [1.0, 2, 3, 5]})
    with pytest.raises(DataError, match="'soon'.*does not parse"):
        data.prepare(frame, "y", split="temporal", time_column="when")
    with pytest.raises(DataError, match="too few for --val-fraction 0.7"):
        data.prepare(frame.drop(columns="when"), "y", val_fraction=0.7)
    with pytest.raises(DataError, match="time column 'wen' not found"):
        data.prepare(frame, "y", split="temporal", time_column="wen")


# ------------------------------------------------------------------------------------------- scaling
def test_scaler_uses_training_rows_only() -> None:
    frame = datasets.load("crop")
    features = CROP_FEATURES + ["farm"]
    before = data.prepare(frame, "yield_t_ha", features, split="temporal", time_column="date")
    changed = frame.copy()
    val_rows = changed.index[before.val_rows]
    changed.loc[val_rows, CROP_FEATURES] *= 100.0  # wild validation values ...
    changed.loc[val_rows, "yield_t_ha"] += 50.0
    after = data.prepare(changed, "yield_t_ha", features, split="temporal", time_column="date")
    assert after.transform.to_dict() == before.transform.to_dict()  # ... leave the stored transform unchanged
    assert np.array_equal(after.train_x, before.train_x)
    # The same experiment on a training row does change it: the test can tell leakage from no leakage.
    changed = frame.copy()
    changed.loc[changed.index[before.train_rows[0]], "rainfall_mm"] += 100.0
    moved = data.prepare(changed, "yield_t_ha", features, split="temporal", time_column="date")
    assert moved.transform.scaler.mean[0] != before.transform.scaler.mean[0]
    # Training inputs are standardised: mean 0, std 1 per column.
    assert np.allclose(before.train_x.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(before.train_x[:, :5].std(axis=0), 1, atol=1e-4)


def test_zero_std_column_stays_finite_and_transform_round_trips() -> None:
    frame = pd.DataFrame({"flat": [3.0] * 8 + [4.0, 5.0], "x": np.arange(10.0), "y": np.arange(10.0) ** 2})
    prepared = data.prepare(frame, "y", split="temporal", time_column="x")
    assert np.isfinite(prepared.val_x).all() and prepared.transform.scaler.std[0] == 1.0
    restored = data.TableTransform.from_dict(prepared.transform.to_dict())
    assert np.array_equal(restored.transform(frame.iloc[prepared.val_rows]), prepared.val_x)


def test_tensors_and_class_mapping() -> None:
    frame = datasets.load("crop")
    regression = data.prepare(frame, "yield_t_ha")
    inputs, targets = data.to_tensors(regression.train_x, regression.train_y, regression.transform)
    assert str(inputs.dtype) == "torch.float32" and inputs.shape == (38, 5)
    assert str(targets.dtype) == "torch.float32" and targets.shape == (38, 1)
    assert abs(float(targets.mean())) < 1e-5  # the network learns the standardised target
    classification = data.prepare(frame, "farm", features=CROP_FEATURES + ["yield_t_ha"])
    assert classification.transform.task == "classification"
    assert classification.transform.classes == ["hill", "north", "river", "valley"]
    inputs, targets = data.to_tensors(classification.train_x, classification.train_y, classification.transform)
    assert str(targets.dtype) == "torch.int64" and targets.shape == (38,)
    labels = frame["farm"].to_numpy()[classification.train_rows]
    assert [classification.transform.classes[i] for i in targets.tolist()] == list(labels)
    one_hot = np.eye(4)[[1, 3]]
    assert classification.transform.decode_predictions(one_hot) == ["north", "valley"]


def test_unseen_level_and_missing_column_at_predict_time() -> None:
    frame = datasets.load("crop")
    prepared = data.prepare(frame, "yield_t_ha", CROP_FEATURES + ["farm"])
    new = frame.head(3).copy()
    new.loc[new.index[0], "farm"] = "moon"
    with pytest.raises(DataError, match="'moon' not seen in training"):
        prepared.transform.transform(new)
    with pytest.raises(DataError, match="lacks the feature column 'sun_hours'"):
        prepared.transform.transform(frame.drop(columns="sun_hours"))


# ------------------------------------------------------------------------------------------- baselines
def test_baselines_on_a_linear_problem() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 3
    results = data.run_baselines((x[:60], y[:60]), (x[60:], y[60:]), "regression", seed=0)
    assert results["linear"]["val_mse"] < 1e-10 < results["forest"]["val_mse"]
    assert results["forest"]["model"] == "RandomForestRegressor"
    labels = (x[:, 0] > 0).astype(np.int64)
    results = data.run_baselines((x[:60], labels[:60]), (x[60:], labels[60:]), "classification", seed=0,
                                 n_classes=2)
    assert results["linear"]["val_accuracy"] >= 0.9 and results["linear"]["val_log_loss"] > 0
    with pytest.raises(ConfigError, match="unknown baseline 'xgboost'"):
        data.run_baselines((x, y), (x, y), "regression", names=["xgboost"])


# ------------------------------------------------------------------------------------------- config
def test_config_file_flags_override_and_validation(tmp_path) -> None:
    path = tmp_path / "fit.toml"
    path.write_text('target = "yield_t_ha"\nlr = 0.01\nhidden = [32]\n[unused]\n')
    with pytest.raises(ConfigError, match="unknown key 'unused'"):
        data.build_config(data.read_config_file(path), {})
    path.write_text('[fit]\ntarget = "yield_t_ha"\nlr = 0.01\nhidden = [32]\ntime_column = "date"\n')
    config = data.build_config(data.read_config_file(path), {"lr": 0.5, "epochs": None})
    assert config.lr == 0.5 and config.hidden == [32] and config.split == "temporal" and config.epochs == 200
    for values, message in [({"epochs": 10.5}, "key 'epochs'.*valid integer"), ({"lr": "0.1"}, "key 'lr'"),
                            ({"batch_size": 0}, "greater than 0"), ({"weight_decay": -1.0}, "greater than or equal"),
                            ({"val_fraction": 1.0}, "less than 1"), ({"hidden": [64, -1]}, "key 'hidden.1'"),
                            ({"optimizer": "adamm"}, "key 'optimizer'"), ({"lrr": 1}, "did you mean 'lr'"),
                            ({"split": "temporal"}, "needs a time column"), ({"lr": float("nan")}, "key 'lr'")]:
        with pytest.raises(ConfigError, match=message) as error:
            data.build_config(values, {})
        one_line_error(error)
    with pytest.raises(ConfigError, match="^--lr got -1.0"):
        data.build_config({}, {"lr": -1.0})
    path.write_text("lr = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        data.read_config_file(path)


def test_parquet_types_and_missing_feature_rows(tmp_path) -> None:
    frame = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=12), "x": np.arange(12.0),
                          "y": np.arange(12.0) ** 2, "level": pd.Categorical(["a", "b"] * 6)})
    frame.to_parquet(tmp_path / "t.parquet")
    table = data.read_table(tmp_path / "t.parquet")
    prepared = data.prepare(table, "y", split="temporal", time_column="when")
    assert prepared.transform.features == ["x"] and prepared.skipped == ["level"]
    with pytest.raises(DataError, match="holds dates/times"):
        data.prepare(table, "y", features=["x", "when"])
    assert data.prepare(table, "y", features=["x", "level"]).transform.categories == {"level": ["a", "b"]}
    table.loc[9, "x"] = np.nan  # row numbers in the message count rows of the whole table, from 1
    with pytest.raises(DataError, match=r"'x' has 1 missing values \(row 10\)"):
        data.prepare(table, "y", split="temporal", time_column="when")
    with pytest.raises(DataError, match="12 classes in 12 rows"):
        data.prepare(table.assign(y=[f"c{i}" for i in range(12)]), "y")


def test_every_numeric_option_is_bounded() -> None:
    for flags, message in [({"seed": 99999999999999999999}, "^--seed got 99999999999999999999"),
                           ({"seed": 2**32}, "^--seed got"), ({"batch_size": 10**20}, "^--batch-size got"),
                           ({"epochs": 10**7}, "^--epochs got"), ({"patience": 2**70}, "^--patience got"),
                           ({"lr": 1e300}, "^--lr got"), ({"weight_decay": 1e300}, "^--weight-decay got"),
                           ({"clip": 1e300}, "^--clip got"), ({"hidden": [8] * 65}, "^--hidden got"),
                           ({"out": ""}, "^--out got ''"), ({"target": ""}, "^--target got ''")]:
        with pytest.raises(ConfigError, match=message) as error:
            data.build_config({}, flags)
        one_line_error(error)
    with pytest.raises(ConfigError, match="NUL"):
        data.build_config({"out": "run\x00x"}, {})
    assert data.build_config({}, {"seed": 2**32 - 1, "batch_size": 2**31}).seed == 2**32 - 1


def test_repeated_column_names_are_refused(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("x,y,x\n1,2,3\n4,5,6\n7,8,9\n")
    with pytest.raises(DataError, match="'x' more than once") as error:
        data.read_table(tmp_path / "t.csv")
    one_line_error(error)
    (tmp_path / "t.csv").write_text("x,x.1,y\n1,2,3\n4,5,6\n7,8,9\n")  # pandas' own rename style is a real name
    assert list(data.read_table(tmp_path / "t.csv").columns) == ["x", "x.1", "y"]
