"""Reading a table without surprises: the header first, bounded messages, an early refusal of what cannot fit.

    read_header(path)           the column names, read from the first line (CSV) or the schema (Parquet) only
    read_table(path, columns)   the whole table (after `check_fits`), as a pandas DataFrame with str column names
    check_fits(path, ...)       refuse a table whose in-memory size exceeds the memory available, saying how much
    is_parquet / open_parquet   the one Parquet detection rule and the one way to open a Parquet file

Messages never echo a whole header or a long value: `names_shown` lists a few names and the count.
"""

from __future__ import annotations

import codecs
import difflib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glassloop.errors import ConfigError, DataError

MAX_COLUMNS = 10_000  # a wider table is a mistake (a sparse export, a transposed file), refused before reading it
MAX_HEADER_BYTES = 1 << 20  # the header line is read in at most this many bytes
MAX_NAME_CHARS = 60  # a column name longer than this is cut in messages
PARQUET_SUFFIXES = (".parquet", ".pq")
MEMORY_FACTOR = 4  # float64 copies alive at the peak (parsed frame, encoded, scaled, tensors): an estimate, not measured
SAMPLE_BYTES = 1 << 20  # the CSV rows sampled to estimate the row count


# ----------------------------------------------------------------------------------------------- messages
def first_line(error: BaseException | str) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else (type(error).__name__ if isinstance(error, BaseException) else "")


def shown_name(name: Any) -> str:
    text = str(name)
    return repr(text if len(text) <= MAX_NAME_CHARS else text[:MAX_NAME_CHARS] + "...")


def names_shown(names: list[Any], limit: int = 12) -> str:
    """'a, b, c' or 'a, b, ... (12,345 columns)': never the whole header of a very wide table."""
    plain = [str(n) if len(str(n)) <= MAX_NAME_CHARS else str(n)[:MAX_NAME_CHARS] + "..." for n in names[:limit]]
    if len(names) <= limit:
        return ", ".join(plain)
    return ", ".join(plain) + f", ... ({len(names):,} columns)"


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices[:MAX_COLUMNS], n=1)
    return f" (did you mean {shown_name(close[0])}?)" if close else ""


def rows_text(mask: np.ndarray | pd.Series, limit: int = 5) -> str:
    """'rows 3, 9' (1-based data rows, as a user counts them below the header)."""
    positions = np.flatnonzero(np.asarray(mask)) + 1
    shown = ", ".join(str(i) for i in positions[:limit])
    return f"row{'s' if len(positions) > 1 else ''} {shown}{', ...' if len(positions) > limit else ''}"


# ----------------------------------------------------------------------------------------------- files
def is_parquet(path: Path) -> bool:
    """The PAR1 magic bytes or a .parquet/.pq name."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError:
        return False
    return magic == b"PAR1" or path.suffix.lower() in PARQUET_SUFFIXES


def open_parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several unrelated types for a corrupt file
        raise DataError(f"cannot read {str(path)!r} as Parquet ({type(error).__name__}: {first_line(error)}); "
                        "expected a valid Parquet file; re-export it or pass a CSV") from None


def check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist; expected a .csv or .parquet file; check the path")
    if not path.is_file():
        raise DataError(f"data path {str(path)!r} is not a file; expected a .csv or .parquet file; pass the file "
                        "itself")
    if path.stat().st_size == 0:
        raise DataError(f"data file {str(path)!r} is empty (0 bytes); expected a header row and data rows; "
                        "check that the file was written completely")


def _separator(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _csv_header(path: Path) -> list[str]:
    """The CSV header as written, from at most MAX_HEADER_BYTES (pandas would rename a repeated 'x' to 'x.1')."""
    with path.open("rb") as handle:
        head = handle.read(MAX_HEADER_BYTES + 1)
    line = head.split(b"\n", 1)[0]
    if b"\n" not in head and len(head) > MAX_HEADER_BYTES:
        raise DataError(f"data file {str(path)!r} has a header line longer than {MAX_HEADER_BYTES:,} bytes (at least "
                        f"{line.count(_separator(path).encode()) + 1:,} columns); expected at most {MAX_COLUMNS:,} "
                        "columns; select the columns you need before training")
    try:  # the first MB as UTF-8 (a cut multi-byte character at its end is fine): a latin-1 file fails here
        codecs.getincrementaldecoder("utf-8")().decode(head[:MAX_HEADER_BYTES], final=False)
    except UnicodeDecodeError as error:
        raise DataError(f"cannot decode {str(path)!r} as UTF-8 (byte 0x{head[error.start:error.start + 1].hex()} at "
                        f"offset {error.start}); expected a UTF-8 text CSV; re-save it as UTF-8 (e.g. iconv -f latin1 "
                        "-t utf-8)") from None
    text = line.removeprefix(b"\xef\xbb\xbf").decode("utf-8").rstrip("\r")
    if not text.strip():
        raise DataError(f"data file {str(path)!r} has no columns (only whitespace); expected a header row and data "
                        "rows; check the file")
    import csv

    return next(csv.reader([text], delimiter=_separator(path)))


def read_header(path: str | Path) -> list[str]:
    """The column names, validated (unique, at most MAX_COLUMNS) before any data row is read."""
    p = Path(path)
    check_file(p)
    if is_parquet(p):
        schema = open_parquet(p).schema_arrow
        names = [str(name) for name in schema.names]
    else:
        names = _csv_header(p)
    if len(names) > MAX_COLUMNS:
        raise DataError(f"data file {str(p)!r} has {len(names):,} columns; expected at most {MAX_COLUMNS:,}; select "
                        "the columns you need before training")
    seen: set[str] = set()
    repeated = sorted({name for name in names if name in seen or seen.add(name)})
    if repeated:  # pandas would silently rename the second one to 'name.1' and train on both
        raise DataError(f"data file {str(p)!r} has the column name {shown_name(repeated[0])} more than once in its "
                        "header; expected unique column names; rename or drop the repeated column")
    return names


def nested_columns(path: Path) -> list[str]:
    """Parquet columns that are structs, lists or maps (refused: they are not table cells)."""
    import pyarrow.types as types

    schema = open_parquet(path).schema_arrow
    return [field.name for field in schema if types.is_nested(field.type)]


def check_not_nested(path: Path, used: list[str]) -> None:
    if not is_parquet(path):
        return
    nested = [name for name in nested_columns(path) if name in used]
    if nested:
        schema = open_parquet(path).schema_arrow
        kind = str(schema.field(nested[0]).type)[:60]
        raise DataError(f"column {shown_name(nested[0])} of {str(path)!r} is a nested Parquet column ({kind}); "
                        "expected flat columns of numbers, text or dates; flatten it into columns or leave it out")


# ----------------------------------------------------------------------------------------------- memory
def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where the system does not say)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def estimated_cells(path: Path, columns: int) -> int:
    """Rows x columns the table would hold in memory: Parquet's metadata, or a CSV's size / its first rows' size."""
    if is_parquet(path):
        return int(open_parquet(path).metadata.num_rows) * columns
    size = path.stat().st_size
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    lines = max(sample.count(b"\n") - 1, 1)  # minus the header
    rows = lines if len(sample) >= size else int(size / (len(sample) / (lines + 1)))
    return rows * columns


def check_fits(path: Path, columns: int, hint: str) -> None:
    """Refuse early, saying how much memory the table would need, when that exceeds what is available."""
    needed = estimated_cells(path, columns) * 8 * MEMORY_FACTOR
    free = available_memory()
    limit = os.environ.get("GLASSLOOP_MEMORY_LIMIT_MB")  # lets a test (or a shared machine) set a lower ceiling
    if limit:
        try:
            free = min(free or 1 << 62, int(float(limit) * 1024 * 1024))
        except ValueError:
            raise ConfigError(f"GLASSLOOP_MEMORY_LIMIT_MB={limit!r} is not a number; expected megabytes; fix or "
                              "unset it") from None
    if free is not None and needed > free:
        raise DataError(f"{str(path)!r} would need about {needed / 2**30:.1f} GiB of memory to train in memory "
                        f"({columns:,} columns), and {free / 2**30:.1f} GiB is available; {hint}")


def read_table(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV (UTF-8, optional BOM) or Parquet file; anything that is not a non-empty table is a DataError.

    The header is read and validated first; `columns` limits what is read (and what is checked against memory)."""
    p = Path(path)
    header = read_header(p)
    wanted = [c for c in header if columns is None or c in columns]
    check_fits(p, max(len(wanted), 1), "convert it to Parquet and train with --stream, or pass fewer --features")
    frame = _read_parquet(p, columns) if is_parquet(p) else _read_csv(p, columns)
    if frame.shape[1] == 0:
        raise DataError(f"data file {str(p)!r} has no columns; expected a table with a header row; check the file")
    if frame.shape[0] == 0:
        raise DataError(f"data file {str(p)!r} has a header ({names_shown(list(frame.columns), 5)}) but no data rows; "
                        "expected at least 3 rows; add data")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read_parquet(p: Path, columns: list[str] | None) -> pd.DataFrame:
    try:
        return pd.read_parquet(p, columns=columns)
    except Exception as error:  # pyarrow raises several unrelated types for a corrupt file
        raise DataError(f"cannot read {str(p)!r} as Parquet ({type(error).__name__}: {first_line(error)}); "
                        "expected a valid Parquet file; re-export it or pass a CSV") from None


def _read_csv(p: Path, columns: list[str] | None) -> pd.DataFrame:
    try:
        return pd.read_csv(p, sep=_separator(p), encoding="utf-8-sig", usecols=columns)
    except UnicodeDecodeError as error:
        bad = error.object[error.start:error.start + 1].hex()
        raise DataError(f"cannot decode {str(p)!r} as UTF-8 (byte 0x{bad} at offset {error.start}); expected a UTF-8 "
                        "text CSV; re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(p)!r} has no columns (only whitespace); expected a header row and data "
                        "rows; check the file") from None
    except (pd.errors.ParserError, ValueError) as error:
        raise DataError(f"cannot parse {str(p)!r} as a CSV table ({first_line(error)[:120]}); expected "
                        "comma-separated rows with the same number of fields as the header; fix the file") from None
