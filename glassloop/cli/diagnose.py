"""`glassloop diagnose DIR`: read a run's learning curves and say what they show."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
    history = load_history(args.run_dir)  # bad input raises DataError before anything is printed
    run_dir = Path(args.run_dir)
    run_dir = run_dir if run_dir.is_dir() else run_dir.parent
    diagnosis = diagnose(history, best_checkpoint=has_best_checkpoint(run_dir))
    if args.format == "json":
        print(json.dumps(diagnosis.to_dict(), indent=2))
    else:
        print(diagnosis)
    return 0


def has_best_checkpoint(run_dir: Path) -> bool | None:
    """True when the run has a best.pt; False for a run directory without one (a run that diverged before any
    finite improvement never writes it); None for a bare CSV elsewhere. The advice names best.pt only if True."""
    if (run_dir / "best.pt").is_file():
        return True
    is_run = any((run_dir / name).is_file() for name in ("latest.pt", "config.json"))
    return False if is_run else None
