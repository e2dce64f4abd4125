"""Larger-than-memory Parquet tables: `glassloop fit` and `predict` one row group at a time.

Memory stays flat as the file grows: nothing here ever holds more than a few row groups, the running
statistics, and a bounded sample for the baselines.

    scan_parquet(path, ...)  one streaming pass: validate, split, fit the scaling on training rows (Chan's merge)
    ParquetBatches           a re-iterable of (inputs, targets) batches for `gl.fit`, one pass per epoch
    fit_streamed / resume_streamed / predict_streamed   the CLI paths (glassloop.tabular.commands dispatches to them)

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
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from glassloop.errors import ConfigError, DataError
from glassloop.tabular.data import (
    MIN_TRAIN_ROWS,
    MIN_VAL_ROWS,
    Scaler,
    TableTransform,
    Task,
    _plain,
    baseline_model,
    check_target,
    choose_features,
    parse_times,
    to_tensors,
)

DEFAULT_THRESHOLD_MB = 512.0
HEAD_ROWS = 50_000  # rows read up front to infer the task and the feature columns
BASELINE_SAMPLE_ROWS = 200_000  # most training rows the scikit-learn baselines are fitted on
BUFFER_GROUPS = 2  # row groups shuffled together
VAL_BATCH_ROWS = 8192
_MASK64 = (1 << 64) - 1


# ----------------------------------------------------------------------------------------------- when
def is_parquet(path: Path) -> bool:
    """Same rule as `read_table`: the PAR1 magic bytes or a .parquet/.pq name."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError:
        return False
    return magic == b"PAR1" or path.suffix.lower() in (".parquet", ".pq")


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


def _open(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several unrelated types for a corrupt file
        raise DataError(f"cannot read {str(path)!r} as Parquet ({type(error).__name__}: "
                        f"{str(error).strip().splitlines()[0][:200] if str(error).strip() else ''}); "
                        "expected a valid Parquet file; re-export it") from None


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


# ----------------------------------------------------------------------------------------------- statistics
@dataclass
class RunningMoments:
    """Per-column count, mean and sum of squared deviations, merged chunk by chunk (Chan et al.'s parallel
    algorithm): numerically stable, unlike sum/sum-of-squares, and O(columns) memory."""

    count: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        n_b = len(values)
        if n_b == 0:
            return
        mean_b = values.mean(axis=0)
        m2_b = ((values - mean_b) ** 2).sum(axis=0)
        if self.count == 0:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        total = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n_b / total)
        self.count = total

    def scaler(self) -> Scaler:
        """Same rule as `Scaler.fit`: population std, and 1 for a column constant on the training rows."""
        std = np.sqrt(self.m2 / self.count)
        std = np.where(std > 1e-12, std, 1.0)
        return Scaler(mean=[float(m) for m in self.mean], std=[float(s) for s in std])


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
    return batch.to_pandas() if batch is not None else pd.DataFrame()


def scan_parquet(path: str | Path, target: str, features: list[str] | None = None, task: Task | None = None,
                 split: Literal["random", "temporal"] = "random", time_column: str | None = None,
                 val_fraction: float = 0.2, seed: int = 0) -> StreamPrepared:
    """Validate, split and fit the scaling in one pass over the file, one row group at a time.

    Task and feature columns are inferred from the first HEAD_ROWS rows with `check_target` and `choose_features`
    (the schema is the file's, so the types cannot change later); every row group is then checked for missing or
    infinite values. Only numeric features stream: a categorical feature is refused (its levels are unknown
    until the end of the file).
    """
    path = Path(path)
    parquet = _open(path)
    n = parquet.metadata.num_rows
    if n < MIN_TRAIN_ROWS + MIN_VAL_ROWS:
        raise DataError(f"{str(path)!r} has {n} row{'s' if n != 1 else ''}; expected at least "
                        f"{MIN_TRAIN_ROWS + MIN_VAL_ROWS} ({MIN_TRAIN_ROWS} to train, {MIN_VAL_ROWS} to validate); add rows")
    head = _head(parquet)
    head.columns = [str(c) for c in head.columns]
    task, why, classes = check_target(head, target, task)
    if time_column is not None:
        parse_times(head, time_column)  # a bad time column is an error even when it is only named
    chosen, categories, skipped = choose_features(head, target, features, time_column)
    if categories:
        name = next(iter(categories))
        raise DataError(f"feature column {name!r} is categorical; streamed tables take numeric features only; "
                        "one-hot encode it in the file, leave it out of --features, or raise --stream-threshold-mb")
    if split == "temporal" and time_column is None:
        raise ConfigError("--split temporal needs --time-column; expected the name of a date/time column; "
                          "add --time-column COL")
    cutoff = _temporal_cutoff(parquet, time_column, n, val_fraction) if split == "temporal" else None
    row_split = StreamSplit(split, val_fraction, seed, time_column if split == "temporal" else None, cutoff)
    columns = list(dict.fromkeys([*chosen, target, *([time_column] if time_column else [])]))
    provisional = TableTransform(target, task, chosen, {}, Scaler([0.0], [1.0]), classes)

    inputs, targets = RunningMoments(), RunningMoments()
    labels: set[Any] = set()
    train_labels: set[Any] = set()
    n_train = n_val = 0
    previous_time: Any = None
    train_until: Any = None
    val_from: Any = None
    start = 0
    for group in range(parquet.num_row_groups):
        frame = parquet.read_row_group(group, columns=columns).to_pandas()
        where = _where(group, start, len(frame))
        encoded = provisional.encode(frame, where)  # missing / infinite / non-numeric values
        values = frame[target]
        if values.isna().any():
            raise DataError(f"target column {target!r} has {int(values.isna().sum())} missing values in {where}; "
                            "expected a value in every row; fill or drop those rows")
        if row_split.method == "temporal":
            times = parse_times(frame, time_column)
            ordered = times.is_monotonic_increasing and (previous_time is None or times.iloc[0] >= previous_time)
            if len(times) and not ordered:
                raise DataError(f"time column {time_column!r} is not sorted in file order ({where}); a streamed "
                                "temporal split needs rows sorted by time; sort the file or use --split random")
            if len(times):
                previous_time = times.iloc[-1]
        is_val = row_split.is_val(start, frame)
        train = ~is_val
        inputs.update(encoded[train])
        if task == "regression":
            target_values = values.astype("float64").to_numpy()
            if not np.isfinite(target_values).all():
                raise DataError(f"target column {target!r} has infinite values in {where}; expected finite numbers; "
                                "fix those rows")
            targets.update(target_values[train])
        else:
            labels |= {_plain(v) for v in values}
            train_labels |= {_plain(v) for v in values[train]}
        if row_split.method == "temporal":
            if train.any():
                train_until = times[train].iloc[-1]
            if is_val.any() and val_from is None:
                val_from = times[is_val].iloc[0]
        n_train += int(train.sum())
        n_val += int(is_val.sum())
        start += len(frame)

    if n_train < MIN_TRAIN_ROWS or n_val < MIN_VAL_ROWS:
        raise DataError(f"the streamed split of {n} rows gives {n_train} training and {n_val} validation rows; "
                        f"expected at least {MIN_TRAIN_ROWS} and {MIN_VAL_ROWS}; change --val-fraction or add rows")
    target_scaler = None
    if task == "regression":
        if targets.m2 is not None and float(targets.m2[0]) == 0.0:
            raise DataError(f"target column {target!r} is constant on the {n_train} training rows; expected "
                            "variation to learn from; check the column")
        target_scaler = targets.scaler()
    else:
        classes = sorted(labels, key=lambda v: (str(type(v)), v))
        if len(classes) > min(100, n // 2):
            raise DataError(f"target column {target!r} has {len(classes)} classes in {n} rows; expected a few "
                            "classes; use --task regression for a numeric quantity")
        if len(train_labels) < 2:
            raise DataError(f"the training rows hold a single class of {target!r}; expected at least two; use "
                            "--split random or add rows of the other classes")
    transform = TableTransform(target, task, chosen, {}, inputs.scaler(), classes, target_scaler)
    info: dict[str, Any] = {"method": split, "val_fraction": val_fraction, "streamed": True}
    if split == "random":
        info |= {"seed": seed, "rule": "validation when splitmix64(seed, row index) < val_fraction"}
    else:
        info |= {"time_column": time_column, "train_until": str(train_until), "val_from": str(val_from),
                 "rule": "file sorted by time; validation from the time of row n - round(n * val_fraction)"}
    info |= {"train_rows": n_train, "val_rows": n_val}
    return StreamPrepared(path=path, transform=transform, split=row_split, split_info=info, task_reason=why,
                          skipped=skipped, row_groups=parquet.num_row_groups, rows=n, columns=columns)


def _where(group: int, start: int, size: int) -> str:
    return f"row group {group} (rows {start + 1}-{start + size})"


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
        parquet = _open(self.path)
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
        parquet = _open(self.path)
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


# ----------------------------------------------------------------------------------------------- metrics
class StreamMetrics:
    """The validation metrics of `data.regression_metrics` / `classification_metrics`, accumulated chunk by chunk."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.count = 0
        self.sums = [0.0, 0.0]  # regression: squared, absolute error; classification: correct, -log p

    def update(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        """regression: predictions in original units; classification: probabilities (N, classes)."""
        if self.task == "regression":
            error = np.asarray(predicted, dtype=np.float64).reshape(-1) - np.asarray(truth, dtype=np.float64)
            self.sums[0] += float(np.sum(error**2))
            self.sums[1] += float(np.sum(np.abs(error)))
        else:
            truth = np.asarray(truth, dtype=np.int64)
            picked = np.clip(predicted[np.arange(len(truth)), truth], 1e-15, 1.0)
            self.sums[0] += float(np.sum(predicted.argmax(axis=1) == truth))
            self.sums[1] += float(-np.sum(np.log(picked)))
        self.count += len(truth)

    def result(self) -> dict[str, float]:
        n = max(self.count, 1)
        if self.task == "regression":
            return {"val_mse": self.sums[0] / n, "val_mae": self.sums[1] / n}
        return {"val_accuracy": self.sums[0] / n, "val_log_loss": self.sums[1] / n}


def network_metrics(model: Any, val: ParquetBatches) -> dict[str, float]:
    from glassloop.tabular.commands import _outputs

    metrics = StreamMetrics(val.transform.task)
    for x, y in val.arrays():
        outputs = _outputs(model, x)
        predicted = outputs if val.transform.task == "classification" else val.transform.decode_predictions(outputs)
        metrics.update(y, np.asarray(predicted))
    return metrics.result()


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


def run_streamed_baselines(train: ParquetBatches, val: ParquetBatches, names: list[str], seed: int,
                           limit: int = BASELINE_SAMPLE_ROWS) -> tuple[dict[str, dict[str, Any]], int]:
    """Baselines fitted on a bounded sample of the training rows, scored on every validation row (streamed)."""
    if not names:
        return {}, 0
    sample_x, sample_y = baseline_sample(train, limit)
    task = train.transform.task
    n_classes = train.transform.n_outputs
    fitted = {}
    for name in names:
        model = baseline_model(name, task, seed)
        model.fit(sample_x, sample_y)
        fitted[name] = (model, StreamMetrics(task))
    for x, y in val.arrays():
        for model, metrics in fitted.values():
            if task == "regression":
                metrics.update(y, model.predict(x))
            else:  # classes absent from the sample get probability 0, as in data.run_baselines
                probabilities = np.zeros((len(x), n_classes))
                probabilities[:, model.classes_.astype(int)] = model.predict_proba(x)
                metrics.update(y, probabilities)
    results = {name: {"model": type(model).__name__, **metrics.result(),
                      "fitted_on_rows": len(sample_x)} for name, (model, metrics) in fitted.items()}
    return results, len(sample_x)


# ----------------------------------------------------------------------------------------------- fit
def prepare_streamed(data_path: Path, config: Any) -> StreamPrepared:
    return scan_parquet(data_path, config.target, features=config.features, task=config.task, split=config.split,
                        time_column=config.time_column, val_fraction=config.val_fraction, seed=config.seed)


def fit_streamed(data_path: Path, config: Any, out: Path, stream_options: dict[str, Any]) -> int:
    """`glassloop fit` on a streamed Parquet file: the same run directory as the in-memory path."""
    from glassloop.tabular import commands as tabular

    prepared = prepare_streamed(data_path, config)
    tabular.check_model_size(prepared.transform.n_inputs, list(config.hidden), prepared.transform.n_outputs)
    tracking_uri = tabular._tracking_uri(config) if config.mlflow else None
    tabular._check_core(config)
    transform = prepared.transform
    record = {
        "config_version": tabular.CONFIG_VERSION,
        "data": str(data_path),
        "data_sha256": tabular._sha256(data_path),
        "options": config.model_dump() | {"data": str(data_path), "out": str(out.resolve())},
        "transform": transform.to_dict(),
        "model": {"inputs": transform.n_inputs, "hidden": list(config.hidden), "dropout": config.dropout,
                  "outputs": transform.n_outputs,
                  "loss": "cross_entropy" if transform.task == "classification" else "mse"},
        "split": prepared.split_info,
        "streaming": stream_options | {"row_groups": prepared.row_groups, "rows": prepared.rows,
                                       "buffer_groups": BUFFER_GROUPS, "split": prepared.split.to_dict()},
        "mlflow": {"tracking_uri": tracking_uri, "experiment": config.experiment} if config.mlflow else None,
    }
    print(f"glassloop fit: streaming {str(data_path)!r} ({prepared.rows} rows in {prepared.row_groups} row groups): "
          f"{prepared.split_info['train_rows']} training / {prepared.split_info['val_rows']} validation rows "
          f"({tabular._describe_split(prepared.split_info)}); task {transform.task} ({prepared.task_reason}); "
          f"{transform.n_inputs} inputs")
    if prepared.skipped:
        print(f"  skipped non-numeric columns: {', '.join(prepared.skipped)}")
    # validation (the whole scan) is over: only now does --out appear (and it goes again if the start fails)
    return tabular.start_run(out, record, lambda: _train_and_report(out, record, prepared, resume=False))


def resume_streamed(run_dir: Path, record: dict[str, Any], mlflow: bool) -> int:
    """`glassloop resume` of a streamed run: re-scan (same transform or refuse), continue from latest.pt."""
    import glassloop as gl
    from glassloop.tabular import commands as tabular
    from glassloop.tabular.data import FitConfig

    config = FitConfig.model_validate(record["options"])
    if not mlflow:
        record["mlflow"] = None
    prepared = prepare_streamed(Path(record["data"]), config)
    stored = TableTransform.from_dict(record["transform"])
    if prepared.transform.to_dict() != stored.to_dict():
        raise DataError(f"the table at {record['data']!r} no longer gives the stored transform; expected the same "
                        "data; start a new run with 'glassloop fit'")
    prepared.transform = stored
    tabular._check_core(config.model_copy(update={"mlflow": record["mlflow"] is not None}))
    start_epoch = int(gl.load_checkpoint(run_dir / "latest.pt")["epoch"])
    return _train_and_report(run_dir, record, prepared, resume=True, start_epoch=start_epoch)


def _train_and_report(out: Path, record: dict[str, Any], prepared: StreamPrepared, resume: bool,
                      start_epoch: int = 0) -> int:
    import torch

    from glassloop.tabular import commands as tabular

    options = record["options"]
    transform = prepared.transform
    task = transform.task
    torch.manual_seed(options["seed"])
    model = tabular._model_from_record(record)
    # The epoch counter continues from latest.pt so a resumed run reads the same row-group orders.
    train = ParquetBatches(prepared.path, transform, options["batch_size"], prepared.split, "train",
                           seed=options["seed"], epoch=start_epoch, n_rows=prepared.split_info["train_rows"],
                           columns=prepared.columns)
    val = ParquetBatches(prepared.path, transform, max(options["batch_size"], VAL_BATCH_ROWS), prepared.split, "val",
                         seed=options["seed"], shuffle=False, n_rows=prepared.split_info["val_rows"],
                         columns=prepared.columns)
    history, logger, code = tabular.train_network(model, train, val, out, record, task, resume)
    if code is not None:
        return code
    network = network_metrics(model, val)
    baselines, sample_rows = run_streamed_baselines(train, val, list(options["baselines"]), options["seed"])
    verdict = tabular.compare(network, {k: _metrics_only(v) for k, v in baselines.items()}, task)
    mlflow_info = None
    if logger is not None:
        try:
            mlflow_info = tabular._log_to_mlflow(record["mlflow"], getattr(logger, "run_id", None), network,
                                                 {k: _metrics_only(v) for k, v in baselines.items()}, record)
        except Exception as error:  # the run is trained and saved; a tracking hiccup must not lose the summary
            print(f"glassloop fit: warning: could not log the baselines to MLflow ({type(error).__name__}: "
                  f"{str(error)[:200]})", file=sys.stderr)
            mlflow_info = {"tracking_uri": record["mlflow"]["tracking_uri"], "error": str(error)[:500]}
    curves = out / "curves.png" if (out / "curves.png").exists() else None
    spec = record["model"]
    summary = {
        "task": task,
        "target": transform.target,
        "data": record["data"],
        "split": prepared.split_info,
        "streaming": {
            "row_groups": prepared.row_groups,
            "rows": prepared.rows,
            "shuffle": f"approximate: row-group order permuted per epoch, rows permuted within {BUFFER_GROUPS} "
                       "row groups at a time",
            "baselines": (f"fitted on a seeded sample of {sample_rows} training rows (at most "
                          f"{BASELINE_SAMPLE_ROWS}), scored on all {prepared.split_info['val_rows']} validation rows")
            if baselines else "none",
            "baseline_sample_rows": sample_rows,
        },
        "network": tabular.network_summary(network, spec, history, task),
        "baselines": baselines,
        "verdict": verdict,
        "mlflow": mlflow_info,
        "paths": tabular.run_paths(out, curves),
    }
    tabular._write_json(out / "summary.json", summary)
    print(tabular.comparison_table(network, {k: _metrics_only(v) for k, v in baselines.items()}, task, history))
    if baselines:
        print(f"(baselines fitted on a sample of {sample_rows} training rows; all validation rows scored)")
    print(verdict["text"])
    print(f"run saved in {out}/ (summary.json, config.json, best.pt); predict with: glassloop predict {out} NEW.parquet")
    return 0 if all(math.isfinite(v) for v in network.values()) else 1


def _metrics_only(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "fitted_on_rows"}


# ----------------------------------------------------------------------------------------------- predict
def predict_streamed(record: dict[str, Any], model: Any, data: Path, out: str | None) -> int:
    """Predict a big Parquet file batch by batch, appending CSV rows as they come (flat memory).

    With `out`, rows go to a temporary file next to it, which is fsynced and moved over `out` only when every row
    is written: a failure (a bad row group, a full disk) leaves no partial file and is one line.
    """
    from glassloop.tabular import commands as tabular

    transform = TableTransform.from_dict(record["transform"])
    parquet = _open(data)
    target = Path(out) if out is not None else None
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}") if target is not None else None
    written = 0
    try:
        handle = temporary.open("w", newline="", encoding="utf-8") if temporary is not None else sys.stdout
        try:
            for batch in parquet.iter_batches(batch_size=65_536):
                frame = batch.to_pandas()
                frame.columns = [str(c) for c in frame.columns]
                where = f"{str(data)!r} rows {written + 1}-{written + len(frame)}"
                outputs = tabular._outputs(model, transform.transform(frame, where))
                frame[f"predicted_{transform.target}"] = transform.decode_predictions(outputs)
                if transform.task == "classification":
                    for index, label in enumerate(transform.classes):
                        frame[f"probability_{label}"] = outputs[:, index]
                frame.to_csv(handle, index=False, header=written == 0)
                written += len(frame)
            handle.flush()
            if temporary is not None:
                os.fsync(handle.fileno())
        finally:
            if temporary is not None:
                handle.close()
        if temporary is not None and target is not None:
            os.replace(temporary, target)
    except BrokenPipeError:  # `glassloop predict ... | head`: the reader left, which is not an error
        if temporary is not None:
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:
        raise ConfigError(f"could not write --out {out!r} ({tabular.os_reason(error)}); nothing was written; "
                          "expected a writable disk with free space; free space or choose another --out") from None
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    if target is not None:
        print(f"wrote {written} predictions to {out} (streamed)")
    return 0
