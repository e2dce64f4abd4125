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


def json_target(path: str) -> Path:
    """Check `--json PATH` before any lesson runs: its folder must exist and PATH must not be a folder."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"--json {path!r} is a directory; give a file path such as {str(target / 'lesson.json')!r}")
    if not target.parent.is_dir():
        raise ConfigError(f"--json {path!r}: the directory {str(target.parent)!r} does not exist; create it first "
                          "or write the JSON elsewhere")
    return target


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
    if args.name is not None and args.name not in LESSONS:
        run_lesson(args.name)  # raises the ConfigError that lists the names, before anything else happens
    target = json_target(args.json) if args.json else None
    names = list(LESSONS) if args.all else [args.name]
    results = {}
    for name in names:
        started = time.perf_counter()
        results[name] = run_lesson(name)
        print(f"\n(lesson {name} ran in {time.perf_counter() - started:.1f} s)")
    if target is not None:
        # torch comes with the checkpoint module: imported only once a lesson ran and JSON is asked for
        from glassloop.core.checkpoint import write_file

        text = json.dumps(results if args.all else results[args.name], indent=1, default=str)
        try:
            write_file(text.encode(), target)  # atomic: never a half-written file
        except OSError as error:
            raise ConfigError(f"cannot write --json {str(target)!r}: {error.strerror or error}") from None
    return 0
