"""`glassloop doctor FILE... [--format text|json|sarif]`: exit 0 clean, 1 warnings/errors found, 2 bad input."""

from __future__ import annotations

import sys

from glassloop.cli import ArgumentParser
from glassloop.doctor.analyzer import check_file
from glassloop.doctor.output import as_json, sarif, text


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="glassloop doctor", description="Find training-loop bugs in your own scripts.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="Python training scripts to check")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    args = parser.parse_args(argv)
    findings = []
    for path in args.files:
        findings += check_file(path)   # a missing/unreadable file raises DataError -> one line, exit 2
    if args.format == "json":
        print(as_json(findings))
    elif args.format == "sarif":
        print(sarif(findings))
    elif findings:
        print(text(findings))
    else:
        print(f"glassloop doctor: {len(args.files)} file(s) checked, no findings", file=sys.stderr)
    return 1 if any(f.severity in ("warning", "error") for f in findings) else 0
