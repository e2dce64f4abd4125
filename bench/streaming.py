"""Peak memory and throughput of `glassloop fit --stream` as the Parquet file grows (1M, 3M, 10M rows).

    .venv/bin/python bench/streaming.py [--sizes 1,3,10] [--batch-size 512] [--in-memory 1,3] [--keep DIR]

Writes each file into a temporary directory (8 float32 features + a float32 target, row groups of 65,536 rows,
written chunk by chunk so the generator's memory is flat too), runs a one-epoch streamed fit on it in a fresh
subprocess (`--no-mlflow --baselines linear`), and reads that process's peak resident memory (VmHWM) and times.
The same is done for a bare `import glassloop, torch, pyarrow` (the floor) and, for contrast, for the in-memory
path on the smaller files. Memory must stay flat for the streamed rows. The files are deleted afterwards.

rows/s: "train" is training rows / the epoch's seconds (history.csv: training + one validation pass);
"end to end" is all rows / wall time of the whole command (scan for the scaling, sha256, training, validation,
network metrics, baseline sample and scoring: about five passes over the file).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FEATURES = 8
GROUP_ROWS = 65_536
BYTES_PER_ROW = (FEATURES + 1) * 4  # float32 columns, before compression (random floats barely compress)


def write_parquet(path: Path, rows: int, seed: int = 0) -> None:
    """A synthetic regression table, written one row group at a time (flat memory while writing)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    weights = rng.normal(size=FEATURES)
    schema = pa.schema([(f"x{i}", pa.float32()) for i in range(FEATURES)] + [("y", pa.float32())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, GROUP_ROWS):
            n = min(GROUP_ROWS, rows - start)
            x = rng.normal(size=(n, FEATURES)).astype(np.float32)
            y = (x @ weights + np.sin(2 * x[:, 0]) + 0.1 * rng.normal(size=n)).astype(np.float32)
            columns = [pa.array(x[:, i]) for i in range(FEATURES)] + [pa.array(y)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=GROUP_ROWS)


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(argv: list[str]) -> None:
    """Run inside the measured subprocess: `floor`, or one `glassloop fit` on argv; print one JSON line."""
    if argv == ["floor"]:
        import pyarrow.parquet  # noqa: F401
        import torch  # noqa: F401

        import glassloop  # noqa: F401

        print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
        return
    from glassloop import cli

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["fit", *argv])
    wall = time.perf_counter() - started
    out = Path(argv[argv.index("--out") + 1])
    with (out / "history.csv").open() as handle:
        epoch_seconds = float(next(csv.DictReader(handle))["seconds"])
    summary = json.loads((out / "summary.json").read_text())
    print(json.dumps({"code": code, "peak_rss_mb": peak_rss_mb(), "wall_s": wall, "epoch_s": epoch_seconds,
                      "train_rows": summary["split"]["train_rows"], "val_mse": summary["network"]["val_mse"]}))


def measure(arguments: list[str]) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", *arguments], capture_output=True, text=True,
                            cwd=ROOT, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"child failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,3,10", help="millions of rows, comma-separated")
    parser.add_argument("--in-memory", default="1,3", help="sizes also run in memory, for contrast ('' = none)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--keep", help="write the files here and keep them (default: a temporary directory)")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",") if s]
    in_memory = {float(s) for s in args.in_memory.split(",") if s}
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="glassloop-stream-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    needed = int(max(sizes) * 1e6 * BYTES_PER_ROW * 1.3) + (1 << 30)  # one file at a time, plus run dirs
    free = shutil.disk_usage(work).free
    if free < needed:
        raise SystemExit(f"{work}: {free / 1e9:.1f} GB free, need about {needed / 1e9:.1f} GB; use --sizes 1,3")
    try:
        floor = measure(["floor"])["peak_rss_mb"]
        print(f"floor (import glassloop, torch, pyarrow): peak RSS {floor:.0f} MB; batch size {args.batch_size}, "
              f"MLP {FEATURES}-64-64-1, 1 epoch, --baselines linear, --no-mlflow")
        header = f"{'rows':>6} {'file MB':>8} {'path':>10} {'peak RSS MB':>12} {'over floor':>11} " \
                 f"{'train rows/s':>13} {'end-to-end rows/s':>18} {'wall s':>7} {'val_mse':>8}"
        rows = []
        for millions in sizes:
            n = int(millions * 1e6)
            data = work / f"table_{n}.parquet"
            started = time.perf_counter()
            write_parquet(data, n)
            size_mb = data.stat().st_size / 2**20
            print(f"  wrote {n:,} rows ({size_mb:.0f} MB, {-(-n // GROUP_ROWS)} row groups) in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            modes = [("streamed", ["--stream"])] + ([("in memory", ["--stream-threshold-mb", "1e9"])]
                                                    if millions in in_memory else [])
            for mode, flags in modes:
                out = work / f"run_{n}_{mode.replace(' ', '_')}"
                result = measure([str(data), "--target", "y", "--out", str(out), "--no-mlflow", "--epochs", "1",
                                  "--batch-size", str(args.batch_size), "--baselines", "linear", *flags])
                shutil.rmtree(out, ignore_errors=True)
                line = (f"{millions:>5g}M {size_mb:>8.0f} {mode:>10} {result['peak_rss_mb']:>12.0f} "
                        f"{result['peak_rss_mb'] - floor:>11.0f} {result['train_rows'] / result['epoch_s']:>13,.0f} "
                        f"{n / result['wall_s']:>18,.0f} {result['wall_s']:>7.1f} {result['val_mse']:>8.3f}")
                rows.append(line)
                print(f"  {line.strip()}", flush=True)
            data.unlink()
        print()
        print(header)
        print("\n".join(rows))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        child(sys.argv[2:])
    else:
        main()
