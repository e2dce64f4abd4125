"""The run record, `config.json`: everything `resume`, `predict` and the MLflow model need, validated by pydantic.

    build_record(...)   the record `glassloop fit` writes (options, data file + sha256, transform, model, split)
    read_run(dir)       the record of a run directory, checked whole: a hand-edited or corrupt file is one line
    write_json(path)    the one JSON writer of a run directory (atomic, through glassloop.core.checkpoint)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from glassloop.core.workloads import mlp, mlp_parameters
from glassloop.errors import ConfigError, DataError, one_line
from glassloop.tabular.data import FitConfig
from glassloop.tabular.transform import TableTransform

CONFIG_VERSION = 1
MAX_PARAMETERS = 200_000_000  # ~800 MB of float32 weights (x4 with Adam): far past any table's needs
Positive = Annotated[int, Field(ge=1)]
Label = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ScalerRecord(_Strict):
    mean: list[float]
    std: list[Annotated[float, Field(gt=0)]]


class ImputerRecord(_Strict):
    strategy: Literal["median", "mean", "most_frequent", "constant"]
    values: dict[str, float | str]
    sample_rows: int | None = None


class TransformRecord(_Strict):
    target: str
    task: Literal["regression", "classification"]
    features: Annotated[list[str], Field(min_length=1)]
    categories: dict[str, list[str]]
    encoded_columns: list[str]
    scaler: ScalerRecord
    classes: list[Label]
    target_scaler: ScalerRecord | None
    imputer: ImputerRecord | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TransformRecord:
        transform = TableTransform.from_dict(self.model_dump())
        if transform.encoded_columns != self.encoded_columns:
            raise ValueError("encoded_columns do not follow from features and categories")
        if not len(self.scaler.mean) == len(self.scaler.std) == transform.n_inputs:
            raise ValueError(f"the scaler has {len(self.scaler.mean)} means and {len(self.scaler.std)} spreads for "
                             f"{transform.n_inputs} encoded columns")
        if self.task == "classification" and len(self.classes) < 2:
            raise ValueError("a classification transform needs at least two classes")
        if self.task == "regression" and (self.classes or self.target_scaler is None
                                          or len(self.target_scaler.mean) != 1):
            raise ValueError("a regression transform has no classes and one target scaler")
        return self


class ModelRecord(_Strict):
    inputs: Positive
    hidden: Annotated[list[Positive], Field(max_length=64)]
    dropout: Annotated[float, Field(ge=0, lt=1)]
    outputs: Positive
    loss: Literal["mse", "cross_entropy"]
    activation: Literal["relu"] = "relu"
    class_weight: list[Annotated[float, Field(ge=0)]] | None = None

    @property
    def sizes(self) -> list[int]:
        return [self.inputs, *self.hidden, self.outputs]


class MlflowRecord(_Strict):
    tracking_uri: str | None
    experiment: Annotated[str, Field(min_length=1)]


class RunRecord(_Strict):
    """config.json. Strict: `config_version: true`, a string where a number belongs, an unknown key: refused."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    config_version: Literal[1]
    data: str
    data_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    data_rows: int | None = None
    options: FitConfig
    transform: TransformRecord
    model: ModelRecord
    split: dict[str, Any]
    mlflow: MlflowRecord | None
    streaming: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _agree(self) -> RunRecord:
        if self.options.target is None:
            raise ValueError("options.target is missing")
        table = TableTransform.from_dict(self.transform.model_dump())
        if (self.model.inputs, self.model.outputs) != (table.n_inputs, table.n_outputs):
            raise ValueError(f"the model has {self.model.inputs} inputs and {self.model.outputs} outputs but the "
                             f"transform gives {table.n_inputs} and {table.n_outputs}")
        count = mlp_parameters(self.model.sizes)
        if count > MAX_PARAMETERS:
            raise ValueError(f"model.hidden {self.model.hidden} gives {count:,} parameters; expected at most "
                             f"{MAX_PARAMETERS:,}")
        return self


def check_model_size(inputs: int, hidden: list[int], outputs: int, where: str = "--hidden") -> None:
    """Refuse a network too large to build (a typo such as --hidden 65536,65536) before anything is written."""
    count = mlp_parameters([inputs, *hidden, outputs])
    if count > MAX_PARAMETERS:
        raise ConfigError(f"{where} {','.join(map(str, hidden))} gives a network of {count:,} parameters for "
                          f"{inputs} inputs; expected at most {MAX_PARAMETERS:,}; choose smaller hidden layers")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, default=_json_default) + "\n").encode("utf-8")


def write_json(path: Path, value: Any) -> None:
    """Atomically (temporary file, fsync, os.replace): a reader (or a crash) never sees half a file."""
    from glassloop.core import checkpoint

    checkpoint.write_file(json_bytes(value), path)


def build_record(data_path: Path, config: FitConfig, out: Path, transform: TableTransform, split: dict[str, Any],
                 tracking_uri: str | None, rows: int, class_weight: list[float] | None = None,
                 streaming: dict[str, Any] | None = None) -> dict[str, Any]:
    record = {
        "config_version": CONFIG_VERSION,
        "data": str(data_path),
        "data_sha256": sha256(data_path),
        "data_rows": rows,
        "options": config.model_dump() | {"data": str(data_path), "out": str(out.resolve())},
        "transform": transform.to_dict(),
        "model": {"inputs": transform.n_inputs, "hidden": list(config.hidden), "dropout": config.dropout,
                  "outputs": transform.n_outputs, "activation": "relu",
                  "loss": "cross_entropy" if transform.task == "classification" else "mse",
                  "class_weight": class_weight},
        "split": split,
        "mlflow": {"tracking_uri": tracking_uri, "experiment": config.experiment} if config.mlflow else None,
    }
    return record | ({"streaming": streaming} if streaming is not None else {})


def _bad(config_path: Path, problem: str) -> DataError:
    return DataError(f"{str(config_path)!r} {problem}; expected the config.json 'glassloop fit' wrote; restore it "
                     "(or undo the edit), or start a new run with 'glassloop fit'")


def validate_record(record: Any, config_path: Path) -> RunRecord:
    """The record as a RunRecord; the first problem is one DataError line naming the key."""
    if not isinstance(record, dict) or record.get("config_version") != CONFIG_VERSION or isinstance(
            record.get("config_version"), bool):
        found = record.get("config_version") if isinstance(record, dict) else None
        raise DataError(f"{str(config_path)!r} has config_version {found!r}; expected {CONFIG_VERSION}; "
                        "re-run 'glassloop fit' with this version")
    try:
        return RunRecord.model_validate(record)
    except ValidationError as error:
        problem = error.errors()[0]
        location = ".".join(str(part) for part in problem["loc"]) or "the record"
        if problem["type"] == "missing":
            raise _bad(config_path, f"lacks the key {location!r}") from None
        message = str(problem["msg"]).removeprefix("Value error, ")
        received = one_line(repr(problem.get("input")))[:60]
        raise _bad(config_path, f"has {location} = {received}: {message[0].lower() + message[1:]}") from None


def read_run(directory: str) -> tuple[Path, RunRecord, dict[str, Any]]:
    """(run dir, validated record, the record as plain JSON) of a run directory made by `glassloop fit`."""
    run_dir = Path(directory)
    config_path = run_dir / "config.json"
    if not directory.strip() or not config_path.is_file():
        raise ConfigError(f"{str(directory)!r} has no config.json; expected a run directory made by 'glassloop fit'; "
                          "check the path, or start a run there with 'glassloop fit DATA --target COL --out DIR'")
    try:
        raw = json.loads(config_path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise DataError(f"{str(config_path)!r} is not valid JSON ({one_line(str(error))[:120]}); expected the file "
                        "'glassloop fit' wrote; restore it or start a new run with 'glassloop fit'") from None
    except OSError as error:
        raise DataError(f"cannot read {str(config_path)!r} ({error.strerror or type(error).__name__}); expected a "
                        "readable file; fix its permissions or start a new run with 'glassloop fit'") from None
    return run_dir, validate_record(raw, config_path), raw


def model_from_record(record: RunRecord) -> Any:
    """The MLP config.json describes: `glassloop.core.workloads.mlp`, the one builder."""
    return mlp(record.model.sizes, record.model.dropout)


def transform_of(record: RunRecord) -> TableTransform:
    return TableTransform.from_dict(record.transform.model_dump())
