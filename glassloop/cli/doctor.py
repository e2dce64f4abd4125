"""`glassloop doctor FILE|DIR... [--format text|json|sarif]` and `glassloop doctor --run SCRIPT [-- ARGS]`:
exit 0 clean, 1 warnings/errors found (or the --run did not reach training), 2 bad input (one line)."""

from __future__ import annotations

import sys

from glassloop.cli import ArgumentParser
from glassloop.doctor.analyzer import check_file
from glassloop.doctor.output import as_json, sarif, text
from glassloop.doctor.paths import expand
from glassloop.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in argv:   # everything after `--` belongs to the user's script
        cut = argv.index("--")
        argv, script_args = argv[:cut], argv[cut + 1:]
    parser = ArgumentParser(prog="glassloop doctor", description="Find training-loop bugs in your own scripts.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="training scripts, or folders of them")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument("--run", action="store_true",
                        help="also run the script (one file) with runtime probes; its arguments go after --")
    parser.add_argument("--steps", type=int, default=20, help="--run: stop after this many optimizer steps")
    parser.add_argument("--timeout", type=float, default=60.0, help="--run: stop after this many seconds")
    args = parser.parse_args(argv)
    if script_args and not args.run:
        raise ConfigError("arguments after `--` are for --run; add --run to run the script with them")
    files = expand(args.files)
    findings = []
    for path in files:
        findings += check_file(path)   # a missing/unreadable/binary file raises DataError -> one line, exit 2
    ok = True
    if args.run:
        if len(files) != 1:
            raise ConfigError(f"--run takes exactly one script, got {len(files)} files")
        from glassloop.doctor.run_mode import run_script

        result = run_script(files[0], script_args, steps=max(1, args.steps), timeout=max(1.0, args.timeout))
        findings = sorted(findings + result.findings, key=lambda f: (f.path, f.line, f.code))
        ok = result.ok
        print(f"glassloop doctor --run: {result.ending}", file=sys.stderr)
    _print(findings, args.format, len(files))
    return 1 if not ok or any(f.severity in ("warning", "error") for f in findings) else 0


def _print(findings: list, fmt: str, checked: int) -> None:
    if fmt == "json":
        print(as_json(findings))
    elif fmt == "sarif":
        print(sarif(findings))
    elif findings:
        print(text(findings))
    else:
        print(f"glassloop doctor: {checked} file(s) checked, no findings", file=sys.stderr)
