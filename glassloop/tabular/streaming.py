"""Larger-than-memory Parquet tables, one row group at a time: the scan, the split, the batches.

Memory stays flat as the file grows: nothing here ever holds more than a few row groups, the running
statistics, and bounded samples (for the baselines, and for --impute median|most_frequent).

    scan_parquet(path, ...)  one streaming pass: validate, split, fit the imputer and the scaling on training rows
    ParquetBatches           a re-iterable of (inputs, targets) batches for `gl.fit`, one pass per epoch
    baseline_sample          a bounded, seeded sample of the training rows for the scikit-learn baselines

`glassloop.tabular.sources.ParquetTable` puts these behind the same `TableSource` as an in-memory table, so
fit, resume and predict are written once (glassloop.tabular.runs).

Split without loading the file (documented in docs/streaming.md):
- `random`: a row is validation when a seeded hash of its global row index (splitmix64) falls below
  `val_fraction`, so the validation share is `val_fraction` on average, not exactly.
- `temporal`: the file must be sorted by the time column (checked row group by row group); validation is every
  row at or after the time of row `n - round(n * val_fraction)`, so it is strictly later than every training row.

Shuffle, per epoch: the order of the row groups is a seeded permutation (different each epoch, the same for the
same seed and epoch), and rows are permuted inside a buffer of `buffer_groups` row groups. That is an approximate
shuffle: two rows from distant row groups never share a buffer, so a file sorted by the target still feeds
correlated batches. Write such files shuffled, or use more buffer groups.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from glassloop.errors import ConfigError, DataError
from glassloop.tabular.baselines import Metrics
from glassloop.tabular.data import MIN_TRAIN_ROWS, MIN_VAL_ROWS, check_target, choose_features, parse_times
from glassloop.tabular.moments import Extremes, RunningMoments
from glassloop.tabular.reading import check_not_nested, is_parquet, open_parquet, shown_name
from glassloop.tabular.transform import (
    Imputer,
    ImputeStrategy,
    Scaler,
    TableTransform,
    Task,
    plain,
    to_tensors,
)

DEFAULT_THRESHOLD_MB = 512.0
HEAD_ROWS = 50_000  # rows read up front to infer the task and the feature columns
BASELINE_SAMPLE_ROWS = 200_000  # most training rows the scikit-learn baselines are fitted on
IMPUTE_SAMPLE_ROWS = 100_000  # most training rows --impute median|most_frequent computes its statistic from
BUFFER_GROUPS = 2  # row groups shuffled together
VAL_BATCH_ROWS = 8192
_MASK64 = (1 << 64) - 1
StreamMetrics = Metrics  # the one accumulator of validation metrics (glassloop.tabular.baselines)


# ----------------------------------------------------------------------------------------------- when
def should_stream(path: Path, force: bool, threshold_mb: float | None) -> bool:
    """Stream a Parquet file bigger than the threshold (or any Parquet file with --stream); CSV never streams."""
    threshold = DEFAULT_THRESHOLD_MB if threshold_mb is None else threshold_mb
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise ConfigError(f"--stream-threshold-mb got {threshold_mb!r}; expected a size in MB >= 0; fix it")
    if not path.is_file():
        return False  # the in-memory path reports the missing file in its own words
    if not is_parquet(path):
        if force:
            raise ConfigError(f"--stream needs a Parquet file, got {str(path)!r}; expected a .parquet file with row "
                              "groups; convert it (pandas.read_csv(...).to_parquet(...)) or drop --stream")
        return False
    return force or path.stat().st_size > threshold * 1024 * 1024


# ----------------------------------------------------------------------------------------------- split
def _uniform(indices: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of (row index, seed) -> [0, 1): a reproducible per-row coin that needs no permutation of n."""
    salt = np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK64)
    with np.errstate(over="ignore"):
        z = indices.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + salt
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass
class StreamSplit:
    """Which rows of a row group are validation rows, decided from the row group alone."""

    method: Literal["random", "temporal"]
    val_fraction: float
    seed: int = 0
    time_column: str | None = None
    cutoff: Any = None  # temporal: the first validation time

    def is_val(self, start: int, frame: pd.DataFrame) -> np.ndarray:
        if self.method == "random":
            return _uniform(np.arange(start, start + len(frame), dtype=np.uint64), self.seed) < self.val_fraction
        return (parse_times(frame, self.time_column) >= self.cutoff).to_numpy()

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "val_fraction": self.val_fraction, "seed": self.seed,
                "time_column": self.time_column, "cutoff": _jsonable(self.cutoff)}


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    return value.item() if hasattr(value, "item") and not isinstance(value, pd.Timestamp) else str(value)


def _temporal_cutoff(parquet: Any, time_column: str, n: int, val_fraction: float) -> Any:
    """The time at row n - n_val in file order, read from its row group only."""
    n_val = max(MIN_VAL_ROWS, int(round(n * val_fraction)))
    index = n - n_val
    start = 0
    for group in range(parquet.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        if index < start + size:
            frame = parquet.read_row_group(group, columns=[time_column]).to_pandas()
            return parse_times(frame, time_column).iloc[index - start]
        start += size
    raise DataError(f"cannot locate row {index + 1} of {n}; expected consistent Parquet metadata; re-export the file")


# ----------------------------------------------------------------------------------------------- scan
@dataclass
class StreamPrepared:
    """The streamed counterpart of `data.Prepared`: everything but the rows themselves."""

    path: Path
    transform: TableTransform
    split: StreamSplit
    split_info: dict[str, Any]
    task_reason: str
    skipped: list[str]
    row_groups: int
    rows: int
    columns: list[str] = field(default_factory=list)  # what each row group read needs


def _head(parquet: Any, columns: list[str] | None = None) -> pd.DataFrame:
    batch = next(parquet.iter_batches(batch_size=HEAD_ROWS, columns=columns), None)
    frame = batch.to_pandas() if batch is not None else pd.DataFrame()
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _where(group: int, start: int, size: int) -> str:
    return f"row group {group} (rows {start + 1}-{start + size})"


class _Scan:
    """What one pass over the row groups accumulates: counts, moments, labels, times, an imputation sample."""

    def __init__(self, provisional: TableTransform, split: StreamSplit, impute: ImputeStrategy | None,
                 n: int, seed: int) -> None:
        self.provisional, self.split, self.impute = provisional, split, impute
        self.inputs, self.targets = RunningMoments(), RunningMoments()
        self.extremes, self.target_extremes = Extremes(), Extremes()
        self.labels: set[Any] = set()
        self.train_labels: set[Any] = set()
        self.n_train = self.n_val = 0
        self.previous_time: Any = None
        self.train_until: Any = None
        self.val_from: Any = None
        self.keep = min(1.0, IMPUTE_SAMPLE_ROWS / max(n, 1))
        self.rng = np.random.default_rng([seed, 7919])
        self.sample: list[pd.DataFrame] = []

    def add(self, frame: pd.DataFrame, start: int, where: str) -> None:
        target = self.provisional.target
        encoded = self.provisional.encode(frame, where, allow_missing=self.impute is not None)
        values = frame[target]
        if values.isna().any():
            raise DataError(f"target column {shown_name(target)} has {int(values.isna().sum())} missing values in "
                            f"{where}; expected a value in every row; fill or drop those rows")
        times = self._check_order(frame, where) if self.split.method == "temporal" else None
        is_val = self.split.is_val(start, frame)
        train = ~is_val
        positions = start + np.flatnonzero(train)
        self.inputs.update(encoded[train])
        self.extremes.update(encoded[train], positions)
        if self.impute in ("median", "most_frequent"):  # a bounded, seeded sample of the training rows
            chosen = self.rng.random(int(train.sum())) < self.keep
            self.sample.append(frame.loc[train, self.provisional.features][chosen])
        if self.provisional.task == "regression":
            target_values = values.astype("float64").to_numpy()
            if not np.isfinite(target_values).all():
                raise DataError(f"target column {shown_name(target)} has infinite values in {where}; expected finite "
                                "numbers; fix those rows")
            self.targets.update(target_values[train])
            self.target_extremes.update(target_values[train][:, None], positions)
        else:
            self.labels |= {plain(v) for v in values}
            self.train_labels |= {plain(v) for v in values[train]}
        if times is not None:
            if train.any():
                self.train_until = times[train].iloc[-1]
            if is_val.any() and self.val_from is None:
                self.val_from = times[is_val].iloc[0]
        self.n_train += int(train.sum())
        self.n_val += int(is_val.sum())

    def _check_order(self, frame: pd.DataFrame, where: str) -> pd.Series:
        times = parse_times(frame, self.split.time_column)
        ordered = times.is_monotonic_increasing and (self.previous_time is None or times.iloc[0] >= self.previous_time)
        if len(times) and not ordered:
            raise DataError(f"time column {shown_name(self.split.time_column)} is not sorted in file order ({where}); "
                            "a streamed temporal split needs rows sorted by time; sort the file or use --split random")
        if len(times):
            self.previous_time = times.iloc[-1]
        return times

    def imputer(self) -> Imputer | None:
        """The fill values: exact for mean and constant, from the bounded sample for median and most_frequent."""
        if self.impute is None:
            return None
        features = self.provisional.features
        if self.impute in ("mean", "constant"):
            empty = [c for c, k in zip(features, self.inputs.count, strict=True) if k == 0]
            if empty:
                raise DataError(f"feature column {shown_name(empty[0])} has no value in the training rows, so "
                                f"--impute {self.impute} has nothing to learn from; leave it out of --features")
            fill = self.inputs.mean if self.impute == "mean" else np.zeros(len(features))
            return Imputer(self.impute, {c: float(v) for c, v in zip(features, fill, strict=True)})
        sample = pd.concat(self.sample) if self.sample else pd.DataFrame(columns=features)
        return Imputer.fit(sample, self.impute, features, [], sample_rows=len(sample))

    def scaler(self, imputer: Imputer | None, columns: list[str]) -> Scaler:
        """The inputs' moments with each column's missing cells counted at its fill value (Chan's merge again)."""
        if imputer is not None:
            missing = self.n_train - self.inputs.count
            fill = np.asarray([imputer.values[c] for c in self.provisional.features], dtype=np.float64)
            self.inputs.merge(missing, fill, np.zeros_like(fill))
            self.extremes.update(np.where(missing > 0, fill, np.nan)[None, :], np.zeros(1, dtype=np.int64))
        return self.inputs.scaler(columns)


def scan_parquet(path: str | Path, target: str, features: list[str] | None = None, task: Task | None = None,
                 split: Literal["random", "temporal"] = "random", time_column: str | None = None,
                 val_fraction: float = 0.2, seed: int = 0, impute: ImputeStrategy | None = None) -> StreamPrepared:
    """Validate, split and fit the imputer and the scaling in one pass over the file, one row group at a time.

    Task and feature columns are inferred from the first HEAD_ROWS rows with `check_target` and `choose_features`
    (the schema is the file's, so the types cannot change later); every row group is then checked for missing or
    infinite values. Only numeric features stream: a categorical feature is refused (its levels are unknown
    until the end of the file).
    """
    path = Path(path)
    parquet = open_parquet(path)
    n = parquet.metadata.num_rows
    if n < MIN_TRAIN_ROWS + MIN_VAL_ROWS:
        raise DataError(f"{str(path)!r} has {n} row{'s' if n != 1 else ''}; expected at least "
                        f"{MIN_TRAIN_ROWS + MIN_VAL_ROWS} ({MIN_TRAIN_ROWS} to train, {MIN_VAL_ROWS} to validate); add rows")
    check_not_nested(path, [target, *(features or []), *([time_column] if time_column else [])])
    head = _head(parquet)
    task, why, classes = check_target(head, target, task)
    if time_column is not None:
        parse_times(head, time_column)  # a bad time column is an error even when it is only named
    chosen, categories, skipped = choose_features(head, target, features, time_column, allow_missing=bool(impute))
    if categories:
        raise DataError(f"feature column {shown_name(next(iter(categories)))} is categorical; streamed tables take "
                        "numeric features only; one-hot encode it in the file, leave it out of --features, or raise "
                        "--stream-threshold-mb")
    if split == "temporal" and time_column is None:
        raise ConfigError("--split temporal needs --time-column; expected the name of a date/time column; "
                          "add --time-column COL")
    cutoff = _temporal_cutoff(parquet, time_column, n, val_fraction) if split == "temporal" else None
    row_split = StreamSplit(split, val_fraction, seed, time_column if split == "temporal" else None, cutoff)
    columns = list(dict.fromkeys([*chosen, target, *([time_column] if time_column else [])]))
    scan = _Scan(TableTransform(target, task, chosen, {}, Scaler([0.0], [1.0]), classes), row_split, impute, n, seed)
    start = 0
    for group in range(parquet.num_row_groups):
        frame = parquet.read_row_group(group, columns=columns).to_pandas()
        scan.add(frame, start, _where(group, start, len(frame)))
        start += len(frame)
    transform = _finish(scan, str(path))
    info: dict[str, Any] = {"method": split, "val_fraction": val_fraction, "streamed": True}
    if split == "random":
        info |= {"seed": seed, "rule": "validation when splitmix64(seed, row index) < val_fraction"}
    else:
        info |= {"time_column": time_column, "train_until": str(scan.train_until), "val_from": str(scan.val_from),
                 "rule": "file sorted by time; validation from the time of row n - round(n * val_fraction)"}
    info |= {"train_rows": scan.n_train, "val_rows": scan.n_val}
    return StreamPrepared(path=path, transform=transform, split=row_split, split_info=info, task_reason=why,
                          skipped=skipped, row_groups=parquet.num_row_groups, rows=n, columns=columns)


def _finish(scan: _Scan, source: str) -> TableTransform:
    """The transform from the scan's statistics, after the checks that need the whole file."""
    provisional, n = scan.provisional, scan.n_train + scan.n_val
    target = provisional.target
    if scan.n_train < MIN_TRAIN_ROWS or scan.n_val < MIN_VAL_ROWS:
        raise DataError(f"the streamed split of {n} rows gives {scan.n_train} training and {scan.n_val} validation "
                        f"rows; expected at least {MIN_TRAIN_ROWS} and {MIN_VAL_ROWS}; change --val-fraction or add rows")
    imputer = scan.imputer()
    scaler = scan.scaler(imputer, provisional.encoded_columns)
    scan.extremes.check(scaler, provisional.encoded_columns, repr(source))
    target_scaler, classes = None, provisional.classes
    if provisional.task == "regression":
        if scan.targets.m2 is not None and float(scan.targets.m2[0]) == 0.0:
            raise DataError(f"target column {shown_name(target)} is constant on the {scan.n_train} training rows; "
                            "expected variation to learn from; check the column")
        target_scaler = scan.targets.scaler([target])
        scan.target_extremes.check(target_scaler, [target], repr(source))
    else:
        classes = sorted(scan.labels, key=lambda v: (str(type(v)), v))
        if len(classes) > min(100, n // 2):
            raise DataError(f"target column {shown_name(target)} has {len(classes)} classes in {n} rows; expected a "
                            "few classes; use --task regression for a numeric quantity")
        if len(scan.train_labels) < 2:
            raise DataError(f"the training rows hold a single class of {shown_name(target)}; expected at least two; "
                            "use --split random or add rows of the other classes")
    return TableTransform(target, provisional.task, provisional.features, {}, scaler, classes, target_scaler, imputer)


# ----------------------------------------------------------------------------------------------- batches
class ParquetBatches:
    """A re-iterable of `(inputs, targets)` float32 batches read row group by row group.

    Each `iter()` is one epoch over the `rows` part ("train" or "val") of the split: inputs scaled with the
    stored transform, targets as `to_tensors` makes them (standardised float32 (N, 1), or int64 class indices).
    With `shuffle`, epoch e uses `numpy.random.default_rng([seed, e])` for the row-group order and the row
    permutation inside each buffer of `buffer_groups` row groups (approximate shuffle, see the module
    docstring); the epoch counter starts at `epoch` (a resumed run sets it from latest.pt). Rows left over
    after the last full batch of a buffer are carried into the next buffer, so every batch but the epoch's
    last holds exactly `batch_size` rows and `len()` is exact.
    """

    def __init__(self, path: str | Path, transform: TableTransform, batch_size: int, split: StreamSplit,
                 rows: Literal["train", "val"] = "train", seed: int = 0, shuffle: bool = True,
                 buffer_groups: int = BUFFER_GROUPS, epoch: int = 0, n_rows: int | None = None,
                 columns: list[str] | None = None) -> None:
        if rows not in ("train", "val"):
            raise ConfigError(f"rows={rows!r}; expected 'train' or 'val'")
        if not isinstance(batch_size, int) or batch_size < 1 or buffer_groups < 1:
            raise ConfigError(f"batch_size={batch_size!r}, buffer_groups={buffer_groups!r}; expected positive integers")
        self.path, self.transform, self.batch_size, self.split = Path(path), transform, batch_size, split
        self.rows, self.seed, self.shuffle, self.buffer_groups = rows, seed, shuffle, buffer_groups
        self.epoch = epoch  # the epoch the next iter() produces
        self.columns = columns or list(dict.fromkeys(
            [*transform.features, transform.target, *([split.time_column] if split.time_column else [])]))
        self.n_rows = n_rows

    def __len__(self) -> int:
        if self.n_rows is None:
            self.n_rows = sum(len(x) for x, _ in self.arrays())
        return math.ceil(self.n_rows / self.batch_size)

    def arrays(self, order: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(scaled float32 inputs, raw targets) of this part, one row group at a time, in `order`."""
        parquet = open_parquet(self.path)
        starts = np.concatenate([[0], np.cumsum([parquet.metadata.row_group(g).num_rows
                                                 for g in range(parquet.num_row_groups)])])
        groups = np.arange(parquet.num_row_groups) if order is None else order
        try:
            for group in groups:
                frame = parquet.read_row_group(int(group), columns=self.columns).to_pandas()
                is_val = self.split.is_val(int(starts[group]), frame)
                part = frame[is_val if self.rows == "val" else ~is_val]
                if len(part):
                    where = _where(int(group), int(starts[group]), len(frame))
                    yield (self.transform.transform(part, where),
                           self.transform.encode_target(part[self.transform.target]))
        finally:
            parquet.close()

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        rng = np.random.default_rng([self.seed, epoch])
        parquet = open_parquet(self.path)
        groups = parquet.num_row_groups
        parquet.close()
        order = rng.permutation(groups) if self.shuffle else None
        carry_x: list[np.ndarray] = []
        carry_y: list[np.ndarray] = []
        buffered = 0
        count = 0
        for x, y in self.arrays(order):
            carry_x.append(x)
            carry_y.append(y)
            buffered += 1
            count += len(x)
            if buffered < self.buffer_groups:
                continue
            remainder = yield from self._emit(carry_x, carry_y, rng, final=False)
            carry_x, carry_y, buffered = remainder[0], remainder[1], 0
        yield from self._emit(carry_x, carry_y, rng, final=True)
        self.n_rows = count

    def _emit(self, xs: list[np.ndarray], ys: list[np.ndarray], rng: np.random.Generator,
              final: bool) -> Iterator[tuple[Any, Any]]:
        if not xs:
            return [], []
        x, y = np.concatenate(xs), np.concatenate(ys)
        if self.shuffle:
            permutation = rng.permutation(len(x))
            x, y = x[permutation], y[permutation]
        full = len(x) if final else len(x) // self.batch_size * self.batch_size
        if full:
            inputs, targets = to_tensors(x[:full], y[:full], self.transform)
            yield from zip(inputs.split(self.batch_size), targets.split(self.batch_size), strict=True)
        return ([x[full:]], [y[full:]]) if full < len(x) else ([], [])


def baseline_sample(train: ParquetBatches, limit: int = BASELINE_SAMPLE_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` training rows, each kept with probability limit / n_train (seeded): a bounded, unbiased
    sample in one pass."""
    n_train = train.n_rows or 1
    keep_probability = min(1.0, limit / n_train)
    rng = np.random.default_rng([train.seed, 104729])
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    kept = 0
    for x, y in train.arrays():
        keep = rng.random(len(x)) < keep_probability
        xs.append(x[keep][: limit - kept])
        ys.append(y[keep][: limit - kept])
        kept += len(xs[-1])
        if kept >= limit:
            break
    return np.concatenate(xs), np.concatenate(ys)
