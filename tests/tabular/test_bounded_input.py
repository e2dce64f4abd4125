"""Bounded inputs: the header read and refused first, short messages for wide tables, overflow after scaling and
the float32 cast, nested Parquet columns, an early memory refusal, curves.png atomic, no stray mlflow.db."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glassloop import cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, err.getvalue()


def one_line(code: int, stderr: str) -> str:
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr
    return stderr


def test_a_huge_header_is_refused_from_its_first_megabyte(tmp_path) -> None:
    path = tmp_path / "wide.csv"
    with path.open("w") as handle:  # 3 MB of header: never read whole, never echoed
        handle.write(",".join(f"c{i}" for i in range(400_000)) + ",y\n1," + "0," * 399_999 + "1\n")
    stderr = one_line(*run("fit", str(path), "--target", "y", "--out", str(tmp_path / "out"), "--no-mlflow"))
    assert "header line longer than" in stderr and len(stderr) < 400 and not (tmp_path / "out").exists()


def test_wide_tables_give_short_messages(tmp_path) -> None:
    frame = pd.DataFrame(np.zeros((4, 3000)), columns=[f"column_{i}" for i in range(3000)])
    frame.to_csv(tmp_path / "t.csv", index=False)
    stderr = one_line(*run("fit", str(tmp_path / "t.csv"), "--target", "nope", "--out", str(tmp_path / "o"),
                           "--no-mlflow"))
    assert "(3,000 columns)" in stderr and len(stderr) < 600


@pytest.mark.parametrize("case", ["float64 overflow in training", "float32 overflow in validation"])
def test_values_that_overflow_after_scaling_or_the_float32_cast_are_refused(tmp_path, case: str) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"t": np.arange(40), "x": rng.normal(size=40), "big": rng.normal(size=40),
                          "y": rng.normal(size=40)})
    if case.startswith("float64"):
        frame.loc[[5, 6], "big"] = 1e308  # their mean is not a float64
    else:
        frame.loc[39, "big"] = 1e300  # a float64, but standardised it is far past float32's 3.4e38
    frame.to_csv(tmp_path / "t.csv", index=False)
    stderr = one_line(*run("fit", str(tmp_path / "t.csv"), "--target", "y", "--time-column", "t", "--out",
                           str(tmp_path / "o"), "--no-mlflow"))
    assert "'big'" in stderr and not (tmp_path / "o").exists()
    if case.startswith("float32"):
        assert "validation rows" in stderr and "row 8" in stderr and "float32" in stderr


def test_streamed_overflow_is_refused_naming_the_column_and_row(tmp_path) -> None:
    frame = pd.DataFrame({"a": np.arange(2000.0), "y": np.arange(2000.0)})
    frame.loc[1234, "a"] = 1e300
    frame.to_parquet(tmp_path / "t.parquet", row_group_size=250)
    stderr = one_line(*run("fit", str(tmp_path / "t.parquet"), "--target", "y", "--features", "a", "--stream",
                           "--out", str(tmp_path / "o"), "--no-mlflow", "--seed", "3"))
    assert "a" in stderr and "overflow" in stderr and not (tmp_path / "o").exists()


def test_nested_parquet_columns_are_refused(tmp_path) -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "y": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0],
                      "tags": [[1, 2], [3], [], [4], [5], [6]]})
    pq.write_table(table, tmp_path / "t.parquet")
    for extra in (["--features", "x,tags"], ["--features", "x,tags", "--stream"]):
        stderr = one_line(*run("fit", str(tmp_path / "t.parquet"), "--target", "y", "--out", str(tmp_path / "o"),
                               "--no-mlflow", *extra))
        assert "nested" in stderr and "'tags'" in stderr and not (tmp_path / "o").exists()


def test_a_table_that_cannot_fit_is_refused_early_saying_how_much_memory(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.normal(size=(20_000, 20))).add_prefix("x").assign(y=1.0).to_csv(tmp_path / "t.csv",
                                                                                      index=False)
    monkeypatch.setenv("GLASSLOOP_MEMORY_LIMIT_MB", "5")
    stderr = one_line(*run("fit", str(tmp_path / "t.csv"), "--target", "y", "--out", str(tmp_path / "o"),
                           "--no-mlflow"))
    assert "GiB of memory" in stderr and "--stream" in stderr and not (tmp_path / "o").exists()


def test_curves_png_is_written_atomically_never_through_a_symlink(tmp_path) -> None:
    import torch

    import glassloop as gl
    from glassloop.tabular.runs import draw_curves

    x = torch.linspace(0, 1, 32).unsqueeze(1)
    history = gl.fit(torch.nn.Linear(1, 1), (x, 2 * x), (x, 2 * x), epochs=3, verbose=False, progress=False)
    out = tmp_path / "run"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "curves.png").symlink_to(victim)  # planted in the run directory: replaced, never followed
    assert draw_curves(out, history) == out / "curves.png"
    assert not (out / "curves.png").is_symlink() and (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert victim.read_text() == "keep me" and sorted(p.name for p in out.iterdir()) == ["curves.png"]


def test_bad_input_leaves_no_mlflow_db_and_no_info_lines(tmp_path) -> None:
    pd.DataFrame({"x": np.arange(12.0), "y": np.arange(12.0)}).to_csv(tmp_path / "t.csv", index=False)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"PYTHONPATH": str(ROOT)}
    for extra in (["--lr", "-1"], ["--features", "nope"], ["--hidden", "65536,65536"]):
        result = subprocess.run([sys.executable, "-m", "glassloop", "fit", "t.csv", "--target", "y", "--out", "o",
                                 *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "INFO" not in result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
