"""`glassloop lesson [NAME]`: run the lessons' examples and watch the numbers."""

from __future__ import annotations

import json
import time
from pathlib import Path

from glassloop.cli import ArgumentParser
from glassloop.errors import ConfigError
from glassloop.teach.lessons import LESSONS, run_lesson


def listing() -> str:
    lines = ["lessons (run one with: glassloop lesson NAME, or all of them with: glassloop lesson --all):"]
    lines += [f"  {lesson.name:<18} {lesson.summary}" for lesson in LESSONS.values()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`glassloop lesson` lists the lessons; `glassloop lesson NAME` runs one."""
    parser = ArgumentParser(prog="glassloop lesson", description="Run the lessons' examples and watch the numbers.")
    parser.add_argument("name", nargs="?", help="the lesson to run; leave out to list them")
    parser.add_argument("--all", action="store_true", help="run every lesson, in order")
    parser.add_argument("--json", metavar="PATH", help="also write the lessons' key numbers to PATH as JSON")
    args = parser.parse_args(argv or [])
    if args.all and args.name:
        raise ConfigError(f"give a lesson name ({args.name!r}) or --all, not both")
    if args.name is None and not args.all:
        print(listing())
        return 0
    names = list(LESSONS) if args.all else [args.name]
    results = {}
    for name in names:
        started = time.perf_counter()
        results[name] = run_lesson(name)
        print(f"\n(lesson {name} ran in {time.perf_counter() - started:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results if args.all else results[args.name], indent=1, default=str))
    return 0
