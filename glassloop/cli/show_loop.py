"""`glassloop show-loop`: print the loop glassloop runs."""

from __future__ import annotations

from glassloop.cli import ArgumentParser
from glassloop.core.events import show_loop


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="glassloop show-loop", description="Print the loop glassloop runs, one line per step.")
    parser.parse_args(argv)
    show_loop()
    return 0
