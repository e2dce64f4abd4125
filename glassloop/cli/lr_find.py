"""`glassloop lr-find DATA --target COL [--out curve.png]`: the learning-rate range test on a table's MLP."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from glassloop.cli import ArgumentParser
from glassloop.errors import ConfigError


def table_tensors(path: str, target: str) -> tuple[Any, int, int, str]:
    """(train tensors, inputs, outputs, loss name) of a CSV/Parquet table, prepared as `glassloop fit` prepares it
    (validated, split, scaled on the training rows only). The one place this command touches glassloop.tabular."""
    from glassloop.tabular.data import prepare, read_table, to_tensors

    prepared = prepare(read_table(path), target)
    transform = prepared.transform
    train = to_tensors(prepared.train_x, prepared.train_y, transform)
    loss = "cross_entropy" if transform.task == "classification" else "mse"
    return train, transform.n_inputs, transform.n_outputs, loss


def parse_hidden(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()] if text.strip() else []
    except ValueError:
        sizes = [0]
    if len(sizes) > 64 or any(not 1 <= size <= 65536 for size in sizes):
        raise ConfigError(f"--hidden {text!r}: expected layer sizes from 1 to 65536, e.g. 64,64 (or '' for linear)")
    return sizes


def check_out(path: str | None, suffixes: tuple[str, ...], flag: str) -> Path | None:
    """An output path must name a file in an existing folder; checked before the test runs."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir() or target.suffix.lower() not in suffixes:
        raise ConfigError(f"{flag} {path!r}: expected a file ending in {' or '.join(suffixes)}, e.g. {flag} curve{suffixes[0]}")
    if not target.parent.is_dir():
        raise ConfigError(f"{flag} {path!r}: the directory {str(target.parent)!r} does not exist; create it first")
    return target


def main(argv: list[str] | None = None) -> int:
    """Run the range test on DATA's MLP and print the suggested LR (and its rule); `--out` draws the curve."""
    parser = ArgumentParser(prog="glassloop lr-find",
                            description="The learning-rate range test (Smith 2015) on a table's MLP: a suggested LR.")
    parser.add_argument("data", metavar="DATA", help="a CSV or Parquet table")
    parser.add_argument("--target", required=True, help="the column to predict")
    parser.add_argument("--out", metavar="PNG", help="draw the loss-vs-LR curve to this PNG")
    parser.add_argument("--json", metavar="PATH", help="write the curve and the suggestion to PATH as JSON")
    parser.add_argument("--optimizer", default="adam", choices=("adam", "adamw", "sgd"), help="default adam")
    parser.add_argument("--start", type=float, default=1e-7, help="first LR (default 1e-7)")
    parser.add_argument("--end", type=float, default=10.0, help="last LR (default 10)")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps, one LR each (default 100)")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per step (default 32)")
    parser.add_argument("--hidden", default="64,64", help="hidden layer sizes of the MLP (default 64,64)")
    parser.add_argument("--rule", default="min/10", choices=("min/10", "steepest"), help="suggestion rule")
    parser.add_argument("--seed", type=int, default=0, help="weights and shuffling seed (default 0)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    from glassloop.lr_find import check_range, find_lr

    check_range(args.start, args.end, args.steps, rule=args.rule)  # bad bounds: one line before reading DATA
    hidden = parse_hidden(args.hidden)
    out, json_path = check_out(args.out, (".png",), "--out"), check_out(args.json, (".json",), "--json")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size}: expected a whole number >= 1, e.g. --batch-size 32")
    train, inputs, outputs, loss = table_tensors(args.data, args.target)

    import torch

    from glassloop.core.workloads import mlp

    torch.manual_seed(args.seed)
    result = find_lr(mlp((inputs, *hidden, outputs)), train, loss=loss, optimizer=args.optimizer, start=args.start,
                     end=args.end, steps=args.steps, batch_size=args.batch_size, rule=args.rule, seed=args.seed)
    print(result)
    if out is not None:
        result.plot(out)
        print(f"  curve: {out}")
    if json_path is not None:
        from glassloop.core.checkpoint import write_file

        write_file(json.dumps(result.to_dict(), indent=1).encode(), json_path)
    print(f"  train with it: glassloop fit {args.data} --target {args.target} --out DIR --lr {result.suggestion:.3g} "
          f"--batch-size {args.batch_size} --hidden {args.hidden or 'none'}"
          if result.suggestion is not None else "  no suggestion: widen --start/--end or raise --steps")
    return 0
