"""Everything that turns raw table rows into the network's inputs and back, fitted on training rows only.

    Imputer          fill missing feature values (scikit-learn's SimpleImputer statistics, stored as plain values)
    Scaler           per-column standardisation
    TableTransform   impute -> encode (numeric as is, categorical one-hot) -> scale -> float32, checked finite;
                     the target's encoding and the inverse (original units, class labels); stored in config.json

It is the one transform: `glassloop fit`, `predict`, the streamed path and the logged MLflow model all call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from glassloop.errors import ConfigError, DataError
from glassloop.tabular.reading import names_shown, rows_text, shown_name

Task = Literal["regression", "classification"]
ImputeStrategy = Literal["median", "mean", "most_frequent", "constant"]
CONSTANT_TEXT = "missing"  # what --impute constant puts in a categorical column (0 in a numeric one)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_numeric(series: pd.Series) -> bool:
    if pd.api.types.is_complex_dtype(series):
        return False
    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def non_number(series: pd.Series) -> Any:
    """A value of a non-numeric column that is not a number, for the message (else its first value)."""
    text = series.dropna().astype(str)
    bad = text[pd.to_numeric(text, errors="coerce").isna()]
    value = bad.iloc[0] if len(bad) else series.iloc[0]
    return value if not isinstance(value, str) or len(value) <= 60 else value[:60] + "..."


def as_float(series: pd.Series) -> np.ndarray:
    return series.astype("float64").to_numpy()


def plain(value: Any) -> Any:
    """numpy scalar -> plain Python (JSON-friendly class labels)."""
    return value.item() if hasattr(value, "item") else value


def check_finite(values: np.ndarray, columns: list[str], source: str, stage: str) -> None:
    """Refuse Inf/NaN produced by scaling or the float32 cast (e.g. 1e308 in a column), naming columns and a row."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    bad = bad.reshape(len(values), -1)
    names = [columns[i] for i in np.flatnonzero(bad.any(axis=0))]
    raise overflow_error(names, source, int(np.flatnonzero(bad.any(axis=1))[0]), stage)


def overflow_error(names: list[str], source: str, row: int, stage: str) -> DataError:
    """`row`: 0-based position in `source`."""
    return DataError(f"column{'s' if len(names) > 1 else ''} {names_shown([repr(n) for n in names], 5)} in {source} "
                     f"overflow{'' if len(names) > 1 else 's'} {stage} (row {row + 1} becomes infinite); expected "
                     f"values whose standardised size fits float32 (|x| < {FLOAT32_MAX:.2g}); rescale the column "
                     "(other units) or leave it out")


# ----------------------------------------------------------------------------------------------- impute
@dataclass
class Imputer:
    """Missing feature values -> the training rows' statistic per column (scikit-learn's SimpleImputer rule)."""

    strategy: ImputeStrategy
    values: dict[str, Any]  # raw column -> fill value
    sample_rows: int | None = None  # streamed median/most_frequent: the bounded sample they came from

    @classmethod
    def fit(cls, frame: pd.DataFrame, strategy: ImputeStrategy, numeric: list[str], categorical: list[str],
            sample_rows: int | None = None) -> Imputer:
        from sklearn.impute import SimpleImputer

        if strategy in ("mean", "median") and categorical:
            raise ConfigError(f"--impute {strategy} makes no sense on the categorical column "
                              f"{shown_name(categorical[0])}; expected numeric feature columns only; use --impute "
                              "most_frequent or constant, or leave the column out of --features")
        values: dict[str, Any] = {}
        for columns, kind in ((numeric, "numeric"), (categorical, "text")):
            if not columns:
                continue
            block = frame[columns]
            empty = [c for c in columns if block[c].isna().all()]
            if empty:
                raise DataError(f"feature column {shown_name(empty[0])} has no value in the {len(frame)} training "
                                f"rows, so --impute {strategy} has nothing to learn from; expected some values; "
                                "leave the column out of --features")
            if kind == "numeric":
                array = block.astype("float64").to_numpy()
            else:  # text levels as str (as the one-hot encoding sees them), missing as NaN
                array = block.astype(str).where(block.notna(), np.nan).to_numpy(dtype=object)
            fill = 0.0 if kind == "numeric" else CONSTANT_TEXT
            imputer = SimpleImputer(strategy=strategy, fill_value=fill if strategy == "constant" else None)
            imputer.fit(array)
            for column, statistic in zip(columns, imputer.statistics_, strict=True):
                values[column] = float(statistic) if kind == "numeric" else str(statistic)
        return cls(strategy, values, sample_rows)

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        present = {c: v for c, v in self.values.items() if c in frame.columns and frame[c].isna().any()}
        if not present:
            return frame
        filled = frame.copy()
        for column, value in present.items():
            series = filled[column]
            filled[column] = (series.astype("float64") if isinstance(value, float) else series.astype(object)).fillna(
                value)
        return filled

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "values": dict(self.values), "sample_rows": self.sample_rows}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Imputer:
        return cls(state["strategy"], dict(state["values"]), state.get("sample_rows"))


# ----------------------------------------------------------------------------------------------- scale
@dataclass
class Scaler:
    """Per-column standardisation fitted on training rows only; plain lists so it goes into config.json."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, values: np.ndarray, columns: list[str] | None = None) -> Scaler:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            mean = values.mean(axis=0)
            std = values.std(axis=0)
        return cls.from_moments(mean, std, columns)

    @classmethod
    def from_moments(cls, mean: np.ndarray, std: np.ndarray, columns: list[str] | None = None) -> Scaler:
        overflow = ~(np.isfinite(mean) & np.isfinite(std))
        if overflow.any():  # values near 1e308: their mean or spread is not a float64
            names = [columns[i] for i in np.flatnonzero(overflow)] if columns else ["(unnamed)"]
            raise DataError(f"column{'s' if len(names) > 1 else ''} {names_shown([repr(n) for n in names], 5)} of the "
                            "training rows cannot be standardised (the mean or spread overflows float64); expected "
                            "values well below 1e300; rescale the column (other units) or leave it out")
        # A column that is constant on the training rows carries nothing to learn from; dividing by 1 keeps it
        # finite (0 on train) instead of producing NaN/Inf.
        std = np.where(std > 1e-12, std, 1.0)
        return cls(mean=[float(m) for m in mean], std=[float(s) for s in std])

    def transform(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return (np.asarray(values, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.std)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * np.asarray(self.std) + np.asarray(self.mean)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Scaler:
        return cls(mean=[float(v) for v in state["mean"]], std=[float(v) for v in state["std"]])


# ----------------------------------------------------------------------------------------------- transform
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
    imputer: Imputer | None = None  # --impute: missing feature values filled before encoding

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

    def encode(self, frame: pd.DataFrame, source: str = "the table", allow_missing: bool = False) -> np.ndarray:
        """Raw columns -> float64 matrix (numeric as is, categorical one-hot); checks columns and values.

        `allow_missing` keeps NaN in numeric columns (the streamed scan, before the imputer is known)."""
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise DataError(f"{source} lacks the feature column{'s' if len(missing) > 1 else ''} "
                            f"{names_shown([repr(m) for m in missing], 5)}; expected all of "
                            f"{names_shown(self.features)}; add the columns (same names as in training)")
        if self.imputer is not None:
            frame = self.imputer.apply(frame)
        blocks = [self._encode_column(frame[column], column, source, allow_missing) for column in self.features]
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))

    def _encode_column(self, series: pd.Series, column: str, source: str, allow_missing: bool) -> np.ndarray:
        if series.isna().any() and not (allow_missing and column not in self.categories):
            raise DataError(f"feature column {shown_name(column)} in {source} has {int(series.isna().sum())} missing "
                            f"values ({rows_text(series.isna())}); expected a value in every row; fill or drop those "
                            "rows (or train with --impute)")
        if column in self.categories:
            levels = self.categories[column]
            text = series.astype(str)
            unknown = sorted(set(text) - set(levels))
            if unknown:
                raise DataError(f"categorical column {shown_name(column)} in {source} has level "
                                f"{shown_name(unknown[0])} not seen in training; expected one of "
                                f"{names_shown([repr(v) for v in levels])}; map it to a known level")
            return (text.to_numpy()[:, None] == np.asarray(levels)[None, :]).astype(np.float64)
        if not is_numeric(series):
            raise DataError(f"feature column {shown_name(column)} in {source} is not numeric (value "
                            f"{non_number(series)!r}); expected numbers as in training; fix the values")
        values = as_float(series)
        if np.isinf(values).any():
            raise DataError(f"feature column {shown_name(column)} in {source} has infinite values "
                            f"({rows_text(np.isinf(values))}); expected finite numbers; fix those rows")
        return values[:, None]

    def scale(self, encoded: np.ndarray, source: str = "the table") -> np.ndarray:
        """Encoded float64 -> scaled float32, refused when a value does not survive the scaling or the cast."""
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = self.scaler.transform(encoded).astype(np.float32)
        check_finite(scaled, self.encoded_columns, source, "after scaling and the float32 cast")
        return scaled

    def transform(self, frame: pd.DataFrame, source: str = "the table") -> np.ndarray:
        """Raw table -> scaled float32 inputs, with the training statistics."""
        return self.scale(self.encode(frame, source), source)

    def encode_target(self, series: pd.Series) -> np.ndarray:
        """Target column -> float64 values (regression) or int64 class indices (classification)."""
        if self.task == "regression":
            return as_float(series)
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

    def prediction_columns(self, outputs: np.ndarray) -> dict[str, Any]:
        """What `glassloop predict` adds to each row: predicted_<target> and, for classes, probability_<label>."""
        columns: dict[str, Any] = {f"predicted_{self.target}": self.decode_predictions(outputs)}
        if self.task == "classification":
            for index, label in enumerate(self.classes):
                columns[f"probability_{label}"] = outputs[:, index]
        return columns

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
            "imputer": self.imputer.to_dict() if self.imputer is not None else None,
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
            imputer=Imputer.from_dict(state["imputer"]) if state.get("imputer") else None,
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
    with np.errstate(over="ignore", invalid="ignore"):
        values = values.astype(np.float32)
    check_finite(values, [transform.target], "the target", "after standardisation and the float32 cast")
    return inputs, torch.as_tensor(values)
