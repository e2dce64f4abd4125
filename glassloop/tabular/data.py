"""Tables in, tensors out: read CSV/Parquet, pick and validate features, split, scale, baselines, FitConfig.

No training happens here. Every check raises a one-line `DataError` (bad data) or `ConfigError` (bad option)
that says what was received, what was expected and how to fix it, so `glassloop fit` can refuse bad input
before it creates anything. pandas and scikit-learn are heavy: this module is not imported by
`import glassloop`, and scikit-learn is imported only where baselines are trained.

The pipeline, in the order `prepare()` runs it:
    read_table -> infer_task / choose_features -> split_rows -> TableTransform.fit(train rows only)
    -> encode + scale -> (train_x, train_y, val_x, val_y)
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from glassloop.errors import ConfigError, DataError

MAX_LEVELS = 20  # most levels a categorical column may have to be one-hot encoded
MAX_CLASSES_INFERRED = 10  # an integer target with at most this many levels is inferred to be classification
MIN_TRAIN_ROWS = 2
MIN_VAL_ROWS = 1
Task = Literal["regression", "classification"]


# ----------------------------------------------------------------------------------------------- reading
def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (UTF-8, optional BOM) or Parquet file; anything that is not a non-empty table is a DataError."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file {str(p)!r} does not exist; expected a .csv or .parquet file; check the path")
    if not p.is_file():
        raise DataError(f"data path {str(p)!r} is not a file; expected a .csv or .parquet file; pass the file itself")
    if p.stat().st_size == 0:
        raise DataError(f"data file {str(p)!r} is empty (0 bytes); expected a header row and data rows; "
                        "check that the file was written completely")
    with p.open("rb") as handle:
        is_parquet = handle.read(4) == b"PAR1"
    if is_parquet or p.suffix.lower() in (".parquet", ".pq"):
        frame = _read_parquet(p)
    else:
        frame = _read_csv(p)
    if frame.shape[1] == 0:
        raise DataError(f"data file {str(p)!r} has no columns; expected a table with a header row; check the file")
    if frame.shape[0] == 0:
        raise DataError(f"data file {str(p)!r} has a header ({', '.join(map(str, frame.columns[:5]))}) but no data "
                        "rows; expected at least 3 rows; add data")
    frame.columns = [str(c) for c in frame.columns]
    header = _raw_header(p) if not (is_parquet or p.suffix.lower() in (".parquet", ".pq")) else list(frame.columns)
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:  # pandas would silently rename the second one to 'name.1' and train on both
        raise DataError(f"data file {str(p)!r} has the column name {repeated[0]!r} more than once in its header; "
                        "expected unique column names; rename or drop the repeated column")
    return frame


def _raw_header(p: Path) -> list[str]:
    """The CSV header as written (pandas renames a repeated name 'x' to 'x.1')."""
    separator = "\t" if p.suffix.lower() == ".tsv" else ","
    first = pd.read_csv(p, sep=separator, encoding="utf-8-sig", header=None, nrows=1, dtype=str,
                        keep_default_na=False)
    return [str(name) for name in first.iloc[0].tolist()] if len(first) else []


def _read_parquet(p: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(p)
    except Exception as error:  # pyarrow raises several unrelated types for a corrupt file
        raise DataError(f"cannot read {str(p)!r} as Parquet ({type(error).__name__}: {_first_line(error)}); "
                        "expected a valid Parquet file; re-export it or pass a CSV") from None


def _read_csv(p: Path) -> pd.DataFrame:
    separator = "\t" if p.suffix.lower() == ".tsv" else ","
    try:
        return pd.read_csv(p, sep=separator, encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        bad = error.object[error.start:error.start + 1].hex()
        raise DataError(f"cannot decode {str(p)!r} as UTF-8 (byte 0x{bad} at offset {error.start}); expected a UTF-8 "
                        "text CSV; re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(p)!r} has no columns (only whitespace); expected a header row and data "
                        "rows; check the file") from None
    except (pd.errors.ParserError, ValueError) as error:
        raise DataError(f"cannot parse {str(p)!r} as a CSV table ({_first_line(error)}); expected comma-separated "
                        "rows with the same number of fields as the header; fix the file") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def _rows(mask: np.ndarray | pd.Series, limit: int = 5) -> str:
    """'rows 3, 9' (1-based data rows, as a user counts them below the header)."""
    positions = np.flatnonzero(np.asarray(mask)) + 1
    shown = ", ".join(str(i) for i in positions[:limit])
    return f"row{'s' if len(positions) > 1 else ''} {shown}{', ...' if len(positions) > limit else ''}"


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_numeric(series: pd.Series) -> bool:
    if pd.api.types.is_complex_dtype(series):
        return False
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _non_number(series: pd.Series) -> Any:
    """A value of a non-numeric column that is not a number, for the message (else its first value)."""
    text = series.dropna().astype(str)
    bad = text[pd.to_numeric(text, errors="coerce").isna()]
    return bad.iloc[0] if len(bad) else series.iloc[0]


def _as_float(series: pd.Series) -> np.ndarray:
    return series.astype("float64").to_numpy()


# ----------------------------------------------------------------------------------------------- task
def infer_task(target: pd.Series) -> tuple[Task, str]:
    """Regression or classification, and why: non-numeric, boolean, or integer with few levels -> classification."""
    values = target.dropna()
    if not _is_numeric(values) or pd.api.types.is_bool_dtype(values):
        return "classification", f"the target is not numeric (e.g. {values.iloc[0]!r})"
    levels = values.nunique()
    # Few integer levels, each seen at least twice on average: class labels, not a measured quantity
    # (house prices 300/400/500 over 3 rows stay a regression).
    if pd.api.types.is_integer_dtype(values) and levels <= MAX_CLASSES_INFERRED and 2 * levels <= len(values):
        return "classification", f"the target holds {levels} integer levels"
    return "regression", "the target is numeric"


# ----------------------------------------------------------------------------------------------- transform
@dataclass
class Scaler:
    """Per-column standardisation fitted on training rows only; plain lists so it goes into config.json."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        # A column that is constant on the training rows carries nothing to learn from; dividing by 1 keeps it
        # finite (0 on train) instead of producing NaN/Inf.
        std = np.where(std > 1e-12, std, 1.0)
        return cls(mean=[float(m) for m in mean], std=[float(s) for s in std])

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.std)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * np.asarray(self.std) + np.asarray(self.mean)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Scaler:
        return cls(mean=[float(v) for v in state["mean"]], std=[float(v) for v in state["std"]])


@dataclass
class TableTransform:
    """Everything that turns a raw table into the network's inputs (and back): stored in config.json."""

    target: str
    task: Task
    features: list[str]  # raw columns, in order
    categories: dict[str, list[str]]  # categorical raw column -> its levels (one-hot, in this order)
    scaler: Scaler  # over the encoded columns
    classes: list[Any] = field(default_factory=list)  # classification: index -> original label
    target_scaler: Scaler | None = None  # regression: the network learns the standardised target

    @property
    def encoded_columns(self) -> list[str]:
        names: list[str] = []
        for column in self.features:
            if column in self.categories:
                names += [f"{column}={level}" for level in self.categories[column]]
            else:
                names.append(column)
        return names

    @property
    def n_inputs(self) -> int:
        return len(self.encoded_columns)

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else 1

    def encode(self, frame: pd.DataFrame, source: str = "the table") -> np.ndarray:
        """Raw columns -> float64 matrix (numeric as is, categorical one-hot); checks columns and values."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise DataError(f"{source} lacks the feature column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(map(repr, missing))}; expected all of {', '.join(self.features)}; "
                            "add the columns (same names as in training)")
        blocks: list[np.ndarray] = []
        for column in self.features:
            series = frame[column]
            if series.isna().any():
                raise DataError(f"feature column {column!r} in {source} has {int(series.isna().sum())} missing values "
                                f"({_rows(series.isna())}); expected a value in every row; fill or drop those rows")
            if column in self.categories:
                levels = self.categories[column]
                text = series.astype(str)
                unknown = sorted(set(text) - set(levels))
                if unknown:
                    raise DataError(f"categorical column {column!r} in {source} has level {unknown[0]!r} not seen in "
                                    f"training; expected one of {', '.join(map(repr, levels))}; map it to a known level")
                blocks.append((text.to_numpy()[:, None] == np.asarray(levels)[None, :]).astype(np.float64))
            else:
                if not _is_numeric(series):
                    example = _non_number(series)
                    raise DataError(f"feature column {column!r} in {source} is not numeric (value {example!r}); "
                                    "expected numbers as in training; fix the values")
                values = _as_float(series)
                if not np.isfinite(values).all():
                    raise DataError(f"feature column {column!r} in {source} has infinite values "
                                    f"({_rows(~np.isfinite(values))}); expected finite numbers; fix those rows")
                blocks.append(values[:, None])
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))

    def transform(self, frame: pd.DataFrame, source: str = "the table") -> np.ndarray:
        """Raw table -> scaled float32 inputs, with the training statistics."""
        return self.scaler.transform(self.encode(frame, source)).astype(np.float32)

    def encode_target(self, series: pd.Series) -> np.ndarray:
        """Target column -> float64 values (regression) or int64 class indices (classification)."""
        if self.task == "regression":
            return _as_float(series)
        index = {str(label): i for i, label in enumerate(self.classes)}
        return np.asarray([index[str(v)] for v in series], dtype=np.int64)

    def decode_predictions(self, outputs: np.ndarray) -> list[Any]:
        """Network outputs -> target values in original units, or class labels."""
        outputs = np.asarray(outputs)
        if self.task == "regression":
            values = outputs.reshape(-1)
            if self.target_scaler is not None:
                values = self.target_scaler.inverse(values[:, None])[:, 0]
            return [float(v) for v in values]
        return [self.classes[int(i)] for i in outputs.argmax(axis=1)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "task": self.task,
            "features": list(self.features),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "encoded_columns": self.encoded_columns,
            "scaler": self.scaler.to_dict(),
            "classes": list(self.classes),
            "target_scaler": self.target_scaler.to_dict() if self.target_scaler is not None else None,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TableTransform:
        return cls(
            target=state["target"],
            task=state["task"],
            features=list(state["features"]),
            categories={k: list(v) for k, v in state["categories"].items()},
            scaler=Scaler.from_dict(state["scaler"]),
            classes=list(state.get("classes", [])),
            target_scaler=Scaler.from_dict(state["target_scaler"]) if state.get("target_scaler") else None,
        )


# ----------------------------------------------------------------------------------------------- features
def choose_features(frame: pd.DataFrame, target: str, features: list[str] | None = None,
                    time_column: str | None = None) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """(features, categorical levels, skipped non-numeric columns).

    Default: every numeric column but the target and the time column; non-numeric columns are skipped (and
    reported) unless named in `features`, where they are one-hot encoded if they have at most MAX_LEVELS levels.
    A text column that is mostly numbers is a typo in the data, never silently skipped.
    """
    columns = list(frame.columns)
    if features is None:
        chosen = [c for c in columns if c not in (target, time_column)]
        explicit = False
    else:
        duplicates = sorted({c for c in features if features.count(c) > 1})
        if duplicates:
            raise ConfigError(f"--features lists {duplicates[0]!r} twice; expected each column once; remove the repeat")
        unknown = [c for c in features if c not in columns]
        if unknown:
            raise DataError(f"feature column {unknown[0]!r} not found{_did_you_mean(unknown[0], columns)}; expected "
                            f"columns of the table: {', '.join(columns)}; fix --features")
        if target in features:
            raise ConfigError(f"--features includes the target {target!r}; expected only input columns; remove it")
        chosen, explicit = list(features), True
    selected: list[str] = []
    categories: dict[str, list[str]] = {}
    skipped: list[str] = []
    for column in chosen:
        series = frame[column]
        if series.isna().all():
            raise DataError(f"column {column!r} is entirely empty (all {len(series)} values missing); expected values; "
                            f"drop the column or leave it out of --features")
        if pd.api.types.is_complex_dtype(series):
            raise DataError(f"column {column!r} holds complex numbers (e.g. {series.iloc[0]!r}); expected real numbers; "
                            "split it into real and imaginary columns or leave it out")
        if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
            if not explicit:  # a time stamp is not a feature by default (it may be the split's time column)
                skipped.append(column)
                continue
            raise DataError(f"column {column!r} holds dates/times (e.g. {series.iloc[0]}); expected numbers or "
                            "categories; derive numeric features (e.g. day of year) or leave it out of --features")
        if _is_numeric(series):
            selected.append(column)
            continue
        parsed = pd.to_numeric(series.astype(str).where(series.notna()), errors="coerce")
        bad = parsed.isna() & series.notna()
        if bad.any() and parsed.notna().sum() > bad.sum():  # mostly numbers: a few bad cells, not a category
            raise DataError(f"column {column!r} looks numeric but value {series[bad].iloc[0]!r} ({_rows(bad)}) is not "
                            "a number; expected numbers in every row; fix those cells or leave the column out")
        if not explicit:
            skipped.append(column)
            continue
        levels = sorted({str(v) for v in series.dropna()})
        if len(levels) > MAX_LEVELS:
            raise DataError(f"categorical column {column!r} has {len(levels)} distinct values (e.g. {levels[0]!r}); "
                            f"expected at most {MAX_LEVELS} to one-hot encode; leave it out of --features or group "
                            "its values")
        selected.append(column)
        categories[column] = levels
    for column in selected:  # here, row numbers refer to the whole table (later checks see only one split)
        if frame[column].isna().any():
            missing = frame[column].isna()
            raise DataError(f"feature column {column!r} has {int(missing.sum())} missing values ({_rows(missing)}); "
                            "expected a value in every row; fill or drop those rows, or leave the column out")
    if not selected:
        hint = f" (skipped non-numeric: {', '.join(skipped)})" if skipped else ""
        raise DataError(f"no feature columns besides the target {target!r}{hint}; expected at least one numeric column; "
                        "pass --features (categorical columns are one-hot encoded)")
    return selected, categories, skipped


def check_target(frame: pd.DataFrame, target: str, task: Task | None) -> tuple[Task, str, list[Any]]:
    """(task, why, classes) after checking the target column: present, complete, not constant, right type."""
    columns = list(frame.columns)
    if target not in columns:
        raise DataError(f"target column {target!r} not found{_did_you_mean(target, columns)}; expected one of: "
                        f"{', '.join(columns)}; fix --target")
    series = frame[target]
    if series.isna().all():
        raise DataError(f"target column {target!r} is entirely empty; expected a value in every row; "
                        "choose another --target")
    if series.isna().any():
        raise DataError(f"target column {target!r} has {int(series.isna().sum())} missing values ({_rows(series.isna())}); "
                        "expected a value in every row; fill or drop those rows")
    inferred, why = infer_task(series)
    if task is None:
        task, why = inferred, f"inferred: {why}; override with --task"
    else:
        why = "--task"
    if task == "regression":
        if not _is_numeric(series):
            example = _non_number(series)
            raise DataError(f"target column {target!r} is not numeric (value {example!r}); expected numbers for "
                            "regression; use --task classification or fix the values")
        values = _as_float(series)
        if not np.isfinite(values).all():
            raise DataError(f"target column {target!r} has infinite values ({_rows(~np.isfinite(values))}); expected "
                            "finite numbers; fix those rows")
        if np.ptp(values) == 0:
            raise DataError(f"target column {target!r} is constant (every row is {values[0]:g}); expected at least "
                            "two distinct values; there is nothing to learn: check the column")
        return task, why, []
    labels = sorted({_plain(v) for v in series}, key=lambda v: (str(type(v)), v))
    if len(labels) < 2:
        raise DataError(f"target column {target!r} has a single class ({labels[0]!r}); expected at least two classes "
                        "for classification; check the column")
    if len(labels) > min(100, len(series) // 2):
        raise DataError(f"target column {target!r} has {len(labels)} classes in {len(series)} rows; expected a few "
                        "classes, each seen at least twice on average; use --task regression for a numeric quantity")
    return task, why, labels


def _plain(value: Any) -> Any:
    """numpy scalar -> plain Python (JSON-friendly class labels)."""
    return value.item() if hasattr(value, "item") else value


# ----------------------------------------------------------------------------------------------- split
def parse_times(frame: pd.DataFrame, time_column: str) -> pd.Series:
    """The time column as sortable values: numbers as they are (years, timestamps), otherwise dates."""
    columns = list(frame.columns)
    if time_column not in columns:
        raise DataError(f"time column {time_column!r} not found{_did_you_mean(time_column, columns)}; expected one of: "
                        f"{', '.join(columns)}; fix --time-column")
    series = frame[time_column]
    if series.isna().any():
        raise DataError(f"time column {time_column!r} has {int(series.isna().sum())} missing values "
                        f"({_rows(series.isna())}); expected a time in every row; fill or drop those rows")
    if _is_numeric(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return series
    parsed = pd.to_datetime(series.astype(str), errors="coerce", format="mixed")
    if parsed.isna().any():
        bad = parsed.isna()
        raise DataError(f"time column {time_column!r} has value {series[bad].iloc[0]!r} ({_rows(bad)}) that does not "
                        "parse as a date or time; expected e.g. 2024-06-15 or a number; fix those cells")
    try:  # mixed time zones cannot be ordered against naive times
        parsed.sort_values()
    except TypeError:
        raise DataError(f"time column {time_column!r} mixes time zones and naive times; expected one convention; "
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
        raise DataError(f"time column {time_column!r} has {distinct} distinct value{'s' if distinct != 1 else ''} in {n} "
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


def prepare(frame: pd.DataFrame, target: str, features: list[str] | None = None, task: Task | None = None,
            split: Literal["random", "temporal"] = "random", time_column: str | None = None,
            val_fraction: float = 0.2, seed: int = 0) -> Prepared:
    """Validate everything and build the transform from the training rows only (no leakage from validation)."""
    if len(frame) < MIN_TRAIN_ROWS + MIN_VAL_ROWS:
        raise DataError(f"the table has {len(frame)} row{'s' if len(frame) != 1 else ''}; expected at least "
                        f"{MIN_TRAIN_ROWS + MIN_VAL_ROWS} ({MIN_TRAIN_ROWS} to train, {MIN_VAL_ROWS} to validate); add rows")
    task, why, classes = check_target(frame, target, task)
    if time_column is not None:
        parse_times(frame, time_column)  # a bad time column is an error even when it is only named
    chosen, categories, skipped = choose_features(frame, target, features, time_column)
    train_rows, val_rows, split_info = split_rows(frame, split, val_fraction, seed, time_column)
    train_frame, val_frame = frame.iloc[train_rows], frame.iloc[val_rows]
    provisional = TableTransform(target, task, chosen, categories, Scaler([0.0], [1.0]), classes)
    train_encoded = provisional.encode(train_frame, "the training rows")
    val_encoded = provisional.encode(val_frame, "the validation rows")
    scaler = Scaler.fit(train_encoded)  # training rows only: validation statistics never leak into the inputs
    target_scaler = None
    if task == "regression":
        train_target = _as_float(train_frame[target])
        if np.ptp(train_target) == 0:
            raise DataError(f"target column {target!r} is constant on the {len(train_rows)} training rows "
                            f"({train_target[0]:g}); expected variation to learn from; use --split random or add rows")
        target_scaler = Scaler.fit(train_target)
    elif len(set(provisional.encode_target(train_frame[target]).tolist())) < 2:
        raise DataError(f"the training rows hold a single class of {target!r}; expected at least two; use --split "
                        "random or add rows of the other classes")
    transform = TableTransform(target, task, chosen, categories, scaler, classes, target_scaler)
    return Prepared(
        transform=transform,
        train_x=scaler.transform(train_encoded).astype(np.float32),
        train_y=transform.encode_target(train_frame[target]),
        val_x=scaler.transform(val_encoded).astype(np.float32),
        val_y=transform.encode_target(val_frame[target]),
        train_rows=train_rows,
        val_rows=val_rows,
        split=split_info | {"train_rows": len(train_rows), "val_rows": len(val_rows)},
        task_reason=why,
        skipped=skipped,
    )


def to_tensors(x: np.ndarray, y: np.ndarray, transform: TableTransform) -> tuple[Any, Any]:
    """(inputs float32 (N, D), targets): regression float32 (N, 1) standardised; classification int64 (N,)."""
    import torch

    inputs = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    if transform.task == "classification":
        return inputs, torch.as_tensor(np.asarray(y, dtype=np.int64))
    values = np.asarray(y, dtype=np.float64)[:, None]
    if transform.target_scaler is not None:
        values = transform.target_scaler.transform(values)
    return inputs, torch.as_tensor(values.astype(np.float32))


# ----------------------------------------------------------------------------------------------- metrics
def regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    error = np.asarray(predicted, dtype=np.float64).reshape(-1) - np.asarray(truth, dtype=np.float64).reshape(-1)
    return {"val_mse": float(np.mean(error**2)), "val_mae": float(np.mean(np.abs(error)))}


def classification_metrics(truth: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy and log-loss (natural log, probabilities clipped to [1e-15, 1])."""
    truth = np.asarray(truth, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    picked = np.clip(probabilities[np.arange(len(truth)), truth], 1e-15, 1.0)
    return {
        "val_accuracy": float(np.mean(probabilities.argmax(axis=1) == truth)),
        "val_log_loss": float(-np.mean(np.log(picked))),
    }


PRIMARY_METRIC = {"regression": ("val_mse", "lower"), "classification": ("val_accuracy", "higher")}


# ----------------------------------------------------------------------------------------------- baselines
BASELINES = ("linear", "forest")


def baseline_model(name: str, task: Task, seed: int = 0) -> Any:
    """The unfitted scikit-learn estimator behind a baseline name (shared by in-memory and streamed fits)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; expected some of {', '.join(BASELINES)} or none; fix --baselines")
    if task == "regression":
        return LinearRegression() if name == "linear" else RandomForestRegressor(n_estimators=100, random_state=seed)
    return (LogisticRegression(max_iter=2000) if name == "linear"
            else RandomForestClassifier(n_estimators=100, random_state=seed))


def run_baselines(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], task: Task,
                  names: tuple[str, ...] | list[str] = BASELINES, seed: int = 0,
                  n_classes: int | None = None) -> dict[str, dict[str, Any]]:
    """Fit scikit-learn baselines on exactly the network's split; name -> {"model": class name, val metrics}.

    regression: LinearRegression, RandomForestRegressor -> val_mse, val_mae (original units).
    classification: LogisticRegression, RandomForestClassifier -> val_accuracy, val_log_loss.
    """
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline {unknown[0]!r}; expected some of {', '.join(BASELINES)} or none; "
                          "fix --baselines")
    train_x, train_y = train
    val_x, val_y = val
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        model = baseline_model(name, task, seed)
        model.fit(train_x, train_y)
        if task == "regression":
            metrics = regression_metrics(val_y, model.predict(val_x))
        else:
            # Classes absent from the training rows get probability 0, so log-loss is over every class.
            k = n_classes if n_classes is not None else int(max(train_y.max(), val_y.max())) + 1
            probabilities = np.zeros((len(val_x), k))
            probabilities[:, model.classes_.astype(int)] = model.predict_proba(val_x)
            metrics = classification_metrics(val_y, probabilities)
        results[name] = {"model": type(model).__name__, **metrics}
    return results


# ----------------------------------------------------------------------------------------------- config
# Bounds on every numeric option: a value past them is a typo or a unit mix-up, refused before anything is
# written (and before torch sees a number it cannot hold, e.g. a seed past 64 bits).
MAX_SEED = 2**32 - 1
MAX_BATCH_SIZE = 2**31
MAX_EPOCHS = 1_000_000
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
        raise ConfigError(f"config file {str(p)!r} is not valid TOML ({_first_line(error)}); expected key = value "
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
        return ConfigError(f"unknown key {key!r} in {source}{_did_you_mean(key, list(FitConfig.model_fields))}; "
                           f"expected one of: {known}; remove or rename it")
    if not location:
        return ConfigError(f"invalid options: {message}")
    received = problem.get("input")
    shown = repr(received) if not isinstance(received, float) or math.isfinite(received) else str(received)
    return ConfigError(f"{where} got {shown[:80]}: {message[0].lower() + message[1:]}; fix {where}")
