"""One table-source abstraction: what fit, resume and the report need from a table, in memory or streamed.

    TableSource      the protocol: transform, split, the data `gl.fit` trains on, validation chunks, baseline rows
    InMemoryTable    a table read whole (glassloop.tabular.data.prepare)
    ParquetTable     a Parquet file streamed row group by row group (glassloop.tabular.streaming)
    open_table       the header first, then one of the two (Parquet above --stream-threshold-mb, or --stream)
    prediction_frames   the rows of a table to predict, in chunks, with the prediction columns added
    table_tensors    the public shortcut other commands share: a table -> train/val tensors + its transform
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from glassloop.errors import DataError
from glassloop.tabular import streaming
from glassloop.tabular.data import FitConfig, Prepared, prepare
from glassloop.tabular.reading import (
    check_not_nested,
    did_you_mean,
    names_shown,
    open_parquet,
    read_header,
    read_table,
    shown_name,
)
from glassloop.tabular.transform import TableTransform, to_tensors

PREDICT_CHUNK_ROWS = 65_536


class TableSource(Protocol):
    """What `glassloop.tabular.runs` needs from a table, whichever way it is read."""

    path: Path
    transform: TableTransform
    split_info: dict[str, Any]
    task_reason: str
    skipped: list[str]
    rows: int

    def describe(self) -> str: ...  # the first line `glassloop fit` prints

    def record(self) -> dict[str, Any] | None: ...  # config.json's "streaming" section (None in memory)

    def train_data(self, batch_size: int, seed: int, start_epoch: int) -> Any: ...  # what gl.fit trains on

    def val_data(self, batch_size: int, seed: int) -> Any: ...

    def val_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...  # scaled inputs, raw targets

    def baseline_rows(self, seed: int) -> tuple[np.ndarray, np.ndarray]: ...  # training rows for the baselines

    def summary(self, sample_rows: int | None) -> dict[str, Any] | None: ...  # summary.json's "streaming"


def _split_text(split: dict[str, Any]) -> str:
    if split["method"] == "temporal":
        return f"temporal on {split['time_column']}: train until {split['train_until']}, validate from {split['val_from']}"
    return f"random, seed {split['seed']}"


class PreparedView:
    """What both table sources read from their prepared table (in memory or streamed)."""

    prepared: Any

    @property
    def transform(self) -> TableTransform:
        return self.prepared.transform

    @transform.setter
    def transform(self, value: TableTransform) -> None:
        self.prepared.transform = value

    @property
    def split_info(self) -> dict[str, Any]:
        return self.prepared.split_info

    @property
    def task_reason(self) -> str:
        return self.prepared.task_reason

    @property
    def skipped(self) -> list[str]:
        return self.prepared.skipped


@dataclass
class InMemoryTable(PreparedView):
    prepared: Prepared
    path: Path
    rows: int

    def describe(self) -> str:
        split, transform = self.split_info, self.transform
        return (f"glassloop fit: {split['train_rows']} training / {split['val_rows']} validation rows "
                f"({_split_text(split)}); task {transform.task} ({self.task_reason}); {transform.n_inputs} inputs "
                f"from {len(transform.features)} columns")

    def record(self) -> dict[str, Any] | None:
        return None

    def train_data(self, batch_size: int, seed: int, start_epoch: int) -> Any:
        return to_tensors(self.prepared.train_x, self.prepared.train_y, self.transform)

    def val_data(self, batch_size: int, seed: int) -> Any:
        return to_tensors(self.prepared.val_x, self.prepared.val_y, self.transform)

    def val_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield self.prepared.val_x, self.prepared.val_y

    def baseline_rows(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return self.prepared.train_x, self.prepared.train_y

    def summary(self, sample_rows: int | None) -> dict[str, Any] | None:
        return None


@dataclass
class ParquetTable(PreparedView):
    prepared: streaming.StreamPrepared
    options: dict[str, Any]  # --stream / --stream-threshold-mb as given

    @property
    def path(self) -> Path:
        return self.prepared.path

    @property
    def rows(self) -> int:
        return self.prepared.rows

    def describe(self) -> str:
        p, split = self.prepared, self.prepared.split_info
        return (f"glassloop fit: streaming {str(p.path)!r} ({p.rows} rows in {p.row_groups} row groups): "
                f"{split['train_rows']} training / {split['val_rows']} validation rows ({_split_text(split)}); task "
                f"{p.transform.task} ({p.task_reason}); {p.transform.n_inputs} inputs")

    def record(self) -> dict[str, Any] | None:
        return self.options | {"row_groups": self.prepared.row_groups, "rows": self.prepared.rows,
                               "buffer_groups": streaming.BUFFER_GROUPS, "split": self.prepared.split.to_dict()}

    def _batches(self, part: str, batch_size: int, seed: int, shuffle: bool, epoch: int) -> streaming.ParquetBatches:
        p = self.prepared
        return streaming.ParquetBatches(p.path, p.transform, batch_size, p.split, part, seed=seed, shuffle=shuffle,
                                        epoch=epoch, n_rows=p.split_info[f"{part}_rows"], columns=p.columns)

    def train_data(self, batch_size: int, seed: int, start_epoch: int) -> Any:
        # The epoch counter continues from latest.pt so a resumed run reads the same row-group orders.
        return self._batches("train", batch_size, seed, True, start_epoch)

    def val_data(self, batch_size: int, seed: int) -> Any:
        return self._batches("val", max(batch_size, streaming.VAL_BATCH_ROWS), seed, False, 0)

    def val_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self._batches("val", streaming.VAL_BATCH_ROWS, 0, False, 0).arrays()

    def baseline_rows(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return streaming.baseline_sample(self._batches("train", streaming.VAL_BATCH_ROWS, seed, True, 0))

    def summary(self, sample_rows: int | None) -> dict[str, Any] | None:
        p = self.prepared
        return {
            "row_groups": p.row_groups,
            "rows": p.rows,
            "shuffle": f"approximate: row-group order permuted per epoch, rows permuted within "
                       f"{streaming.BUFFER_GROUPS} row groups at a time",
            "baselines": (f"fitted on a seeded sample of {sample_rows} training rows (at most "
                          f"{streaming.BASELINE_SAMPLE_ROWS}), scored on all {p.split_info['val_rows']} validation "
                          "rows") if sample_rows else "none",
            "baseline_sample_rows": sample_rows or 0,
        }


def check_columns(header: list[str], path: Path, target: str, features: list[str] | None,
                  time_column: str | None) -> None:
    """The named columns exist, checked on the header alone (before the table is read)."""
    known = set(header)
    for name, flag in [(target, "--target"), *[(f, "--features") for f in features or []],
                       *([(time_column, "--time-column")] if time_column else [])]:
        if name not in known:
            what = {"--target": "target column", "--features": "feature column", "--time-column": "time column"}[flag]
            raise DataError(f"{what} {shown_name(name)} not found{did_you_mean(name, header)}; expected "
                            f"{'columns of the table' if flag == '--features' else 'one of'}: {names_shown(header)}; "
                            f"fix {flag}")
    check_not_nested(path, [target, *(features or []), *([time_column] if time_column else [])])


def open_table(data_path: Path, config: FitConfig, stream: bool = False,
               threshold_mb: float | None = None) -> TableSource:
    """Validate the header, then the whole table (in memory, or streamed for a big Parquet file)."""
    header = read_header(data_path)
    check_columns(header, data_path, config.target, config.features, config.time_column)
    kwargs = {"features": config.features, "task": config.task, "split": config.split,
              "time_column": config.time_column, "val_fraction": config.val_fraction, "seed": config.seed,
              "impute": config.impute}
    if streaming.should_stream(data_path, stream, threshold_mb):
        prepared = streaming.scan_parquet(data_path, config.target, **kwargs)
        return ParquetTable(prepared, {"forced": stream, "threshold_mb": threshold_mb})
    needed = None if config.features is None else [*config.features, config.target,
                                                   *([config.time_column] if config.time_column else [])]
    frame = read_table(data_path, columns=needed)
    return InMemoryTable(prepare(frame, config.target, **kwargs), data_path, len(frame))


def prediction_frames(path: Path, transform: TableTransform, outputs: Any, stream: bool = False,
                      threshold_mb: float | None = None) -> Iterator[pd.DataFrame]:
    """The table's rows with predicted_<target> (and probability_<class>) added, in chunks.

    `outputs(inputs) -> np.ndarray` runs the network. The header is checked for the feature columns first."""
    header = read_header(path)
    missing = [c for c in transform.features if c not in set(header)]
    if missing:
        raise DataError(f"{str(path)!r} lacks the feature column{'s' if len(missing) > 1 else ''} "
                        f"{names_shown([repr(m) for m in missing], 5)}; expected all of "
                        f"{names_shown(transform.features)}; add the columns (same names as in training)")
    if streaming.should_stream(path, stream, threshold_mb):
        return _streamed_predictions(path, transform, outputs)
    frame = read_table(path)
    return iter([frame.assign(**transform.prediction_columns(outputs(transform.transform(frame, repr(str(path))))))])


def _streamed_predictions(path: Path, transform: TableTransform, outputs: Any) -> Iterator[pd.DataFrame]:
    parquet = open_parquet(path)
    written = 0
    for batch in parquet.iter_batches(batch_size=PREDICT_CHUNK_ROWS):
        frame = batch.to_pandas()
        frame.columns = [str(c) for c in frame.columns]
        where = f"{str(path)!r} rows {written + 1}-{written + len(frame)}"
        written += len(frame)
        yield frame.assign(**transform.prediction_columns(outputs(transform.transform(frame, where))))


@dataclass
class TableTensors:
    """A table as `gl.fit` / `gl.sweep` take it: tensors scaled on the training rows only."""

    train: tuple[Any, Any]
    val: tuple[Any, Any]
    transform: TableTransform
    loss: str  # "mse" (standardised target) or "cross_entropy" (class indices)
    split: dict[str, Any]


def table_tensors(path: str | Path, config: FitConfig) -> TableTensors:
    """The data flags' meaning, shared by every command that trains on a table (`glassloop fit`, `sweep`):
    header first, validation, the split, impute and scaling fitted on the training rows, then tensors."""
    source = open_table(Path(path), config)
    if not isinstance(source, InMemoryTable):
        raise DataError(f"{str(path)!r} is too big to hold in memory as tensors; expected a table that fits; use "
                        "'glassloop fit --stream' for it")
    prepared = source.prepared
    return TableTensors(train=to_tensors(prepared.train_x, prepared.train_y, prepared.transform),
                        val=to_tensors(prepared.val_x, prepared.val_y, prepared.transform),
                        transform=prepared.transform,
                        loss="cross_entropy" if prepared.transform.task == "classification" else "mse",
                        split=prepared.split)
