"""`glassloop diagnose DIR`: read a run's learning curves and say what they show."""

from __future__ import annotations

import json
import sys

from glassloop.analysis.diagnosis import diagnose, load_history
from glassloop.cli import ArgumentParser


def main(argv: list[str] | None = None) -> int:
    """`glassloop diagnose DIR [--format text|json]`: read DIR/history.csv and print the diagnosis."""
    parser = ArgumentParser(
        prog="glassloop diagnose",
        description="Read a run's learning curves (DIR/history.csv) and say what they show, with advice.",
    )
    parser.add_argument(
        "run_dir", metavar="DIR", help="a run directory holding history.csv (or the CSV itself)"
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    diagnosis = diagnose(load_history(args.run_dir))
    if args.format == "json":
        print(json.dumps(diagnosis.to_dict(), indent=2))
    else:
        print(diagnosis)
    return 0
