"""Tables in, tensors out: pick and validate features and the target, split, fit the transform, FitConfig.

No training happens here. Every check raises a one-line `DataError` (bad data) or `ConfigError` (bad option)
that says what was received, what was expected and how to fix it, so `glassloop fit` can refuse bad input
before it creates anything. pandas and scikit-learn are heavy: this module is not imported by
`import glassloop`, and scikit-learn is imported only where baselines are trained or values imputed.

The pipeline, in the order `prepare()` runs it:
    read_table -> infer_task / choose_features -> split_rows -> TableTransform fitted on the training rows only
    (imputer, scaler, target scaler) -> impute + encode + scale -> (train_x, train_y, val_x, val_y)

The pieces live in glassloop.tabular.reading (files), .transform (the transform) and .baselines (metrics,
baselines, the verdict); their names are re-exported here so `from glassloop.tabular import data` reaches them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from glassloop.core.options import MAX_BATCH_SIZE, MAX_EPOCHS
from glassloop.errors import ConfigError, DataError
from glassloop.tabular.baselines import (  # noqa: F401  (re-exported: data.run_baselines, data.regression_metrics)
    BASELINES,
    PRIMARY_METRIC,
    baseline_model,
    classification_metrics,
    regression_metrics,
    run_baselines,
)
from glassloop.tabular.reading import did_you_mean, first_line, names_shown, read_table, rows_text, shown_name
from glassloop.tabular.transform import (  # noqa: F401  (re-exported)
    Imputer,
    ImputeStrategy,
    Scaler,
    TableTransform,
    Task,
    as_float,
    is_numeric,
    non_number,
    plain,
    to_tensors,
)

MAX_LEVELS = 20  # most levels a categorical column may have to be one-hot encoded
MAX_CLASSES_INFERRED = 10  # an integer target with at most this many levels is inferred to be classification
MIN_TRAIN_ROWS = 2
MIN_VAL_ROWS = 1
__all__ = ["BASELINES", "PRIMARY_METRIC", "FitConfig", "Imputer", "Prepared", "Scaler", "TableTransform",
           "baseline_model", "build_config", "check_target", "choose_features", "classification_metrics",
           "infer_task", "parse_times", "prepare", "read_config_file", "read_table", "regression_metrics",
           "run_baselines", "split_rows", "to_tensors"]


# ----------------------------------------------------------------------------------------------- task
def infer_task(target: pd.Series) -> tuple[Task, str]:
    """Regression or classification, and why: non-numeric, boolean, or integer with few levels -> classification."""
    values = target.dropna()
    if not is_numeric(values) or pd.api.types.is_bool_dtype(values):
        return "classification", f"the target is not numeric (e.g. {values.iloc[0]!r})"
    levels = values.nunique()
    # Few integer levels, each seen at least twice on average: class labels, not a measured quantity
    # (house prices 300/400/500 over 3 rows stay a regression).
    if pd.api.types.is_integer_dtype(values) and levels <= MAX_CLASSES_INFERRED and 2 * levels <= len(values):
        return "classification", f"the target holds {levels} integer levels"
    return "regression", "the target is numeric"


# ----------------------------------------------------------------------------------------------- features
def is_nested(series: pd.Series) -> bool:
    """A column of structs, lists or maps (Parquet nesting): never a table cell to encode as text."""
    if series.dtype != object and not isinstance(series.dtype, pd.ArrowDtype):
        return False
    values = series.dropna()
    return bool(len(values)) and isinstance(values.iloc[0], (dict, list, tuple, np.ndarray))


def _named_features(columns: list[str], target: str, features: list[str]) -> list[str]:
    duplicates = sorted({c for c in features if features.count(c) > 1})
    if duplicates:
        raise ConfigError(f"--features lists {shown_name(duplicates[0])} twice; expected each column once; remove "
                          "the repeat")
    known = set(columns)
    unknown = [c for c in features if c not in known]
    if unknown:
        raise DataError(f"feature column {shown_name(unknown[0])} not found{did_you_mean(unknown[0], columns)}; "
                        f"expected columns of the table: {names_shown(columns)}; fix --features")
    if target in features:
        raise ConfigError(f"--features includes the target {shown_name(target)}; expected only input columns; "
                          "remove it")
    return list(features)


def _column_kind(series: pd.Series, column: str, explicit: bool) -> Literal["numeric", "categorical", "skip"]:
    """numeric, categorical (named in --features) or skip (not named); a column that cannot be a feature raises."""
    name = shown_name(column)
    if series.isna().all():
        raise DataError(f"column {name} is entirely empty (all {len(series)} values missing); expected values; "
                        "drop the column or leave it out of --features")
    if is_nested(series):
        if not explicit:
            return "skip"
        raise DataError(f"column {name} is a nested column (lists, structs or maps); expected flat values; flatten "
                        "it into columns or leave it out of --features")
    if pd.api.types.is_complex_dtype(series):
        raise DataError(f"column {name} holds complex numbers (e.g. {series.iloc[0]!r}); expected real numbers; "
                        "split it into real and imaginary columns or leave it out")
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        if not explicit:  # a time stamp is not a feature by default (it may be the split's time column)
            return "skip"
        raise DataError(f"column {name} holds dates/times (e.g. {series.iloc[0]}); expected numbers or "
                        "categories; derive numeric features (e.g. day of year) or leave it out of --features")
    if is_numeric(series):
        return "numeric"
    parsed = pd.to_numeric(series.astype(str).where(series.notna()), errors="coerce")
    bad = parsed.isna() & series.notna()
    if bad.any() and parsed.notna().sum() > bad.sum():  # mostly numbers: a few bad cells, not a category
        raise DataError(f"column {name} looks numeric but value {non_number(series[bad])!r} ({rows_text(bad)}) is "
                        "not a number; expected numbers in every row; fix those cells or leave the column out")
    return "categorical" if explicit else "skip"


def choose_features(frame: pd.DataFrame, target: str, features: list[str] | None = None,
                    time_column: str | None = None,
                    allow_missing: bool = False) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """(features, categorical levels, skipped non-numeric columns).

    Default: every numeric column but the target and the time column; non-numeric columns are skipped (and
    reported) unless named in `features`, where they are one-hot encoded if they have at most MAX_LEVELS levels.
    A text column that is mostly numbers is a typo in the data, never silently skipped. Missing values are
    refused unless `allow_missing` (--impute fills them).
    """
    columns = list(frame.columns)
    explicit = features is not None
    chosen = (_named_features(columns, target, features) if features is not None
              else [c for c in columns if c not in (target, time_column)])
    selected: list[str] = []
    categories: dict[str, list[str]] = {}
    skipped: list[str] = []
    for column in chosen:
        kind = _column_kind(frame[column], column, explicit)
        if kind == "skip":
            skipped.append(column)
            continue
        selected.append(column)
        if kind == "categorical":
            levels = sorted({str(v) for v in frame[column].dropna()})
            if len(levels) > MAX_LEVELS:
                raise DataError(f"categorical column {shown_name(column)} has {len(levels)} distinct values (e.g. "
                                f"{shown_name(levels[0])}); expected at most {MAX_LEVELS} to one-hot encode; leave it "
                                "out of --features or group its values")
            categories[column] = levels
    for column in [] if allow_missing else selected:  # row numbers refer to the whole table here
        missing = frame[column].isna()
        if missing.any():
            raise DataError(f"feature column {shown_name(column)} has {int(missing.sum())} missing values "
                            f"({rows_text(missing)}); expected a value in every row; fill or drop those rows, leave "
                            "the column out, or pass --impute median|mean|most_frequent|constant")
    if not selected:
        hint = f" (skipped non-numeric: {names_shown(skipped)})" if skipped else ""
        raise DataError(f"no feature columns besides the target {shown_name(target)}{hint}; expected at least one "
                        "numeric column; pass --features (categorical columns are one-hot encoded)")
    return selected, categories, skipped


def check_target(frame: pd.DataFrame, target: str, task: Task | None) -> tuple[Task, str, list[Any]]:
    """(task, why, classes) after checking the target column: present, complete, not constant, right type."""
    columns = list(frame.columns)
    if target not in columns:
        raise DataError(f"target column {shown_name(target)} not found{did_you_mean(target, columns)}; expected one of: "
                        f"{names_shown(columns)}; fix --target")
    series = frame[target]
    if is_nested(series):
        raise DataError(f"target column {shown_name(target)} is a nested column (lists, structs or maps); expected "
                        "one number or label per row; choose another --target")
    if series.isna().all():
        raise DataError(f"target column {shown_name(target)} is entirely empty; expected a value in every row; "
                        "choose another --target")
    if series.isna().any():
        raise DataError(f"target column {shown_name(target)} has {int(series.isna().sum())} missing values ({rows_text(series.isna())}); "
                        "expected a value in every row; fill or drop those rows")
    inferred, why = infer_task(series)
    if task is None:
        task, why = inferred, f"inferred: {why}; override with --task"
    else:
        why = "--task"
    if task == "regression":
        if not is_numeric(series):
            example = non_number(series)
            raise DataError(f"target column {shown_name(target)} is not numeric (value {example!r}); expected numbers for "
                            "regression; use --task classification or fix the values")
        values = as_float(series)
        if not np.isfinite(values).all():
            raise DataError(f"target column {shown_name(target)} has infinite values ({rows_text(~np.isfinite(values))}); expected "
                            "finite numbers; fix those rows")
        if np.ptp(values) == 0:
            raise DataError(f"target column {shown_name(target)} is constant (every row is {values[0]:g}); expected at least "
                            "two distinct values; there is nothing to learn: check the column")
        return task, why, []
    labels = sorted({plain(v) for v in series}, key=lambda v: (str(type(v)), v))
    if len(labels) < 2:
        raise DataError(f"target column {shown_name(target)} has a single class ({labels[0]!r}); expected at least two classes "
                        "for classification; check the column")
    if len(labels) > min(100, len(series) // 2):
        raise DataError(f"target column {shown_name(target)} has {len(labels)} classes in {len(series)} rows; expected a few "
                        "classes, each seen at least twice on average; use --task regression for a numeric quantity")
    return task, why, labels


# ----------------------------------------------------------------------------------------------- split
def parse_times(frame: pd.DataFrame, time_column: str) -> pd.Series:
    """The time column as sortable values: numbers as they are (years, timestamps), otherwise dates."""
    columns = list(frame.columns)
    if time_column not in columns:
        raise DataError(f"time column {shown_name(time_column)} not found{did_you_mean(time_column, columns)}; expected one of: "
                        f"{names_shown(columns)}; fix --time-column")
    series = frame[time_column]
    if series.isna().any():
        raise DataError(f"time column {shown_name(time_column)} has {int(series.isna().sum())} missing values "
                        f"({rows_text(series.isna())}); expected a time in every row; fill or drop those rows")
    if is_numeric(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return series
    parsed = pd.to_datetime(series.astype(str), errors="coerce", format="mixed")
    if parsed.isna().any():
        bad = parsed.isna()
        raise DataError(f"time column {shown_name(time_column)} has value {series[bad].iloc[0]!r} ({rows_text(bad)}) that does not "
                        "parse as a date or time; expected e.g. 2024-06-15 or a number; fix those cells")
    try:  # mixed time zones cannot be ordered against naive times
        parsed.sort_values()
    except TypeError:
        raise DataError(f"time column {shown_name(time_column)} mixes time zones and naive times; expected one convention; "
                        "make all values naive or all timezone-aware") from None
    return parsed


def split_rows(frame: pd.DataFrame, method: Literal["random", "temporal"], val_fraction: float, seed: int,
               time_column: str | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(train row positions, validation row positions, description).

    random: a seeded permutation. temporal: validation is the latest `val_fraction` of rows and strictly later
    than every training row; rows that share the boundary time all go to validation (or, if that would leave
    fewer than MIN_TRAIN_ROWS to train on, all to training).
    """
    n = len(frame)
    n_val = max(MIN_VAL_ROWS, int(round(n * val_fraction)))
    if n - n_val < MIN_TRAIN_ROWS:
        raise DataError(f"the table has {n} row{'s' if n != 1 else ''}, too few for --val-fraction {val_fraction:g} "
                        f"({n - n_val} to train, {n_val} to validate); expected at least {MIN_TRAIN_ROWS} training and "
                        f"{MIN_VAL_ROWS} validation row; add rows or lower --val-fraction")
    if method == "random":
        order = np.random.default_rng(seed).permutation(n)
        train, val = np.sort(order[n_val:]), np.sort(order[:n_val])
        return train, val, {"method": "random", "seed": seed, "val_fraction": val_fraction}
    if time_column is None:
        raise ConfigError("--split temporal needs --time-column; expected the name of a date/time column; "
                          "add --time-column COL")
    times = parse_times(frame, time_column)
    order = np.argsort(times.to_numpy(), kind="stable")
    sorted_times = times.to_numpy()[order]
    cutoff = sorted_times[n - n_val]
    is_val = times.to_numpy() >= cutoff  # ties at the boundary go to validation
    if n - int(is_val.sum()) < MIN_TRAIN_ROWS:
        is_val = times.to_numpy() > cutoff  # ... unless that starves training
    n_val_actual = int(is_val.sum())
    if n_val_actual < MIN_VAL_ROWS or n - n_val_actual < MIN_TRAIN_ROWS:
        distinct = times.nunique()
        raise DataError(f"time column {shown_name(time_column)} has {distinct} distinct value{'s' if distinct != 1 else ''} in {n} "
                        f"rows, too few for a temporal split with --val-fraction {val_fraction:g}; expected validation "
                        "rows strictly later than training rows; use --split random or add later rows")
    train, val = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    info = {
        "method": "temporal",
        "time_column": time_column,
        "val_fraction": val_fraction,
        "train_until": str(times.iloc[train].max()),
        "val_from": str(times.iloc[val].min()),
    }
    return train, val, info


# ----------------------------------------------------------------------------------------------- prepare
@dataclass
class Prepared:
    """A validated, split, scaled table: what `glassloop fit` trains and compares on."""

    transform: TableTransform
    train_x: np.ndarray  # float32, scaled with training statistics
    train_y: np.ndarray  # regression: float64 original units; classification: int64 class indices
    val_x: np.ndarray
    val_y: np.ndarray
    train_rows: np.ndarray
    val_rows: np.ndarray
    split: dict[str, Any]
    task_reason: str
    skipped: list[str]

    @property
    def split_info(self) -> dict[str, Any]:  # the name the streamed table uses too (tabular/sources.py)
        return self.split


def prepare(frame: pd.DataFrame, target: str, features: list[str] | None = None, task: Task | None = None,
            split: Literal["random", "temporal"] = "random", time_column: str | None = None,
            val_fraction: float = 0.2, seed: int = 0, impute: ImputeStrategy | None = None) -> Prepared:
    """Validate everything and build the transform from the training rows only (no leakage from validation)."""
    if len(frame) < MIN_TRAIN_ROWS + MIN_VAL_ROWS:
        raise DataError(f"the table has {len(frame)} row{'s' if len(frame) != 1 else ''}; expected at least "
                        f"{MIN_TRAIN_ROWS + MIN_VAL_ROWS} ({MIN_TRAIN_ROWS} to train, {MIN_VAL_ROWS} to validate); add rows")
    task, why, classes = check_target(frame, target, task)
    if time_column is not None:
        parse_times(frame, time_column)  # a bad time column is an error even when it is only named
    chosen, categories, skipped = choose_features(frame, target, features, time_column, allow_missing=bool(impute))
    train_rows, val_rows, split_info = split_rows(frame, split, val_fraction, seed, time_column)
    train_frame, val_frame = frame.iloc[train_rows], frame.iloc[val_rows]
    imputer = None
    if impute is not None:  # statistics of the training rows only, like the scaler
        numeric = [c for c in chosen if c not in categories]
        imputer = Imputer.fit(train_frame, impute, numeric, [c for c in chosen if c in categories])
        for column in categories:  # a filled level ('missing', or the commonest) is one more one-hot column
            categories[column] = sorted({*categories[column], str(imputer.values[column])})
    provisional = TableTransform(target, task, chosen, categories, Scaler([0.0], [1.0]), classes, imputer=imputer)
    train_encoded = provisional.encode(train_frame, "the training rows")
    val_encoded = provisional.encode(val_frame, "the validation rows")
    # training rows only: validation statistics never leak into the inputs
    scaler = Scaler.fit(train_encoded, provisional.encoded_columns)
    target_scaler = _target_scaler(provisional, train_frame)
    transform = TableTransform(target, task, chosen, categories, scaler, classes, target_scaler, imputer)
    return Prepared(
        transform=transform,
        train_x=transform.scale(train_encoded, "the training rows"),
        train_y=transform.encode_target(train_frame[target]),
        val_x=transform.scale(val_encoded, "the validation rows"),
        val_y=transform.encode_target(val_frame[target]),
        train_rows=train_rows,
        val_rows=val_rows,
        split=split_info | {"train_rows": len(train_rows), "val_rows": len(val_rows)},
        task_reason=why,
        skipped=skipped,
    )


def _target_scaler(transform: TableTransform, train_frame: pd.DataFrame) -> Scaler | None:
    """Regression: the training rows' target statistics (a constant target there is refused)."""
    if transform.task != "regression":
        if len(set(transform.encode_target(train_frame[transform.target]).tolist())) < 2:
            raise DataError(f"the training rows hold a single class of {shown_name(transform.target)}; expected at "
                            "least two; use --split random or add rows of the other classes")
        return None
    train_target = as_float(train_frame[transform.target])
    if np.ptp(train_target) == 0:
        raise DataError(f"target column {shown_name(transform.target)} is constant on the {len(train_frame)} "
                        f"training rows ({train_target[0]:g}); expected variation to learn from; use --split random "
                        "or add rows")
    return Scaler.fit(train_target, [transform.target])


def balanced_class_weights(train_y: np.ndarray, n_classes: int) -> list[float]:
    """scikit-learn's 'balanced' rule, n_rows / (n_present_classes * count), from the training rows' class counts.

    A class absent from the training rows gets 1.0: no training row carries it, so it only weighs validation rows."""
    counts = np.bincount(np.asarray(train_y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return [float(w) for w in weights]


# ----------------------------------------------------------------------------------------------- config
# Bounds on every numeric option: a value past them is a typo or a unit mix-up, refused before anything is
# written (and before torch sees a number it cannot hold, e.g. a seed past 64 bits).
MAX_SEED = 2**32 - 1  # narrower than gl.fit's: the seed is also scikit-learn's random_state (32 bits)
MAX_HIDDEN_LAYERS = 64
MAX_LR = 100.0
MAX_WEIGHT_DECAY = 100.0
MAX_CLIP = 1e9
Epochs = Annotated[int, Field(gt=0, le=MAX_EPOCHS)]
HiddenSize = Annotated[int, Field(gt=0, le=65536)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
Text = Annotated[str, Field(min_length=1)]
SchedulerName = Literal["step", "exponential", "cosine", "warmup_cosine", "plateau", "onecycle"]


class FitConfig(BaseModel):
    """Options of `glassloop fit`, from `--config FILE.toml` and/or flags (flags win). Strict: 10.5 is not an int."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    data: Text | None = None
    target: Text | None = None
    out: Text | None = None
    features: list[Text] | None = None
    split: Literal["random", "temporal"] | None = None  # None: temporal when a time column is given
    time_column: Text | None = None
    val_fraction: Fraction = 0.2
    task: Task | None = None
    hidden: Annotated[list[HiddenSize], Field(max_length=MAX_HIDDEN_LAYERS)] = Field(
        default_factory=lambda: [64, 64])  # [] = a linear model
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    epochs: Epochs = 200
    batch_size: Annotated[int, Field(gt=0, le=MAX_BATCH_SIZE)] = 32
    lr: Annotated[float, Field(gt=0, le=MAX_LR)] = 1e-3
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0
    weight_decay: Annotated[float, Field(ge=0, le=MAX_WEIGHT_DECAY)] = 0.0
    scheduler: SchedulerName | None = None
    clip: Annotated[float, Field(gt=0, le=MAX_CLIP)] | None = None
    patience: Epochs = 20
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    baselines: list[Literal["linear", "forest"]] = Field(default_factory=lambda: list(BASELINES))
    mlflow: bool = True
    tracking_uri: Text | None = None
    experiment: Text = "glassloop"
    impute: ImputeStrategy | None = None  # None: a missing feature value is refused
    class_weight: Literal["balanced", "none"] = "none"
    accumulate: Annotated[int, Field(ge=1, le=1024)] = 1  # micro-batches per optimizer step
    precision: Literal["32", "bf16", "16-mixed"] = "32"
    check_finite_every: Annotated[int, Field(ge=1, le=1_000_000)] = 1  # steps between reads of loss and norm
    tensorboard: Text | None = None  # also write TensorBoard event files to this folder

    @model_validator(mode="after")
    def _split_needs_time(self) -> FitConfig:
        for key in ("data", "out", "target", "time_column", "tracking_uri", "experiment"):
            value = getattr(self, key)
            if value is not None and "\x00" in value:
                raise ValueError(f"{key} {value!r} holds a NUL character; expected a plain name or path; "
                                 f"fix {key}")
        if self.split == "temporal" and not self.time_column:
            raise ValueError("split 'temporal' needs a time column; add --time-column COL (or time_column = \"COL\")")
        if self.split is None:
            self.split = "temporal" if self.time_column else "random"
        if self.class_weight == "balanced" and self.task == "regression":
            raise ValueError("class weights apply to classification; drop --class-weight or use --task classification")
        if len(set(self.baselines)) != len(self.baselines):
            raise ValueError(f"baselines {self.baselines} repeat a name; list each once")
        return self


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The TOML file as a dict (a `[fit]` table or top-level keys); unreadable or malformed -> ConfigError."""
    p = Path(path)
    if not p.is_file():
        what = "is not a file" if p.exists() else "does not exist"
        raise ConfigError(f"config file {str(p)!r} {what}; expected a TOML file; check --config")
    try:
        values = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text; expected a TOML file; re-save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML ({first_line(error)}); expected key = value "
                          "lines; fix the syntax") from None
    if set(values) == {"fit"} and isinstance(values["fit"], dict):
        values = values["fit"]
    return values


def build_config(file_values: dict[str, Any], flag_values: dict[str, Any], source: str = "config file") -> FitConfig:
    """Merge file values with flags (flags win) and validate; any problem is one ConfigError line naming the key."""
    merged = dict(file_values) | {k: v for k, v in flag_values.items() if v is not None}
    try:
        return FitConfig.model_validate(merged)
    except ValidationError as error:
        raise config_error(error, set(flag_values) & {k for k, v in flag_values.items() if v is not None},
                           source) from None


def config_error(error: ValidationError, from_flags: set[str], source: str) -> ConfigError:
    """First pydantic problem -> 'where: got VALUE; expected ...; fix' in one line."""
    problem = error.errors()[0]
    location = [str(part) for part in problem["loc"]]
    key = location[0] if location else ""
    where = f"--{key.replace('_', '-')}" if key in from_flags else f"key {'.'.join(location)!r} in {source}"
    message = str(problem["msg"]).removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        known = ", ".join(FitConfig.model_fields)
        return ConfigError(f"unknown key {key!r} in {source}{did_you_mean(key, list(FitConfig.model_fields))}; "
                           f"expected one of: {known}; remove or rename it")
    if not location:
        return ConfigError(f"invalid options: {message}")
    received = problem.get("input")
    shown = repr(received) if not isinstance(received, float) or math.isfinite(received) else str(received)
    return ConfigError(f"{where} got {shown[:80]}: {message[0].lower() + message[1:]}; fix {where}")
