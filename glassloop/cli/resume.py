"""`glassloop resume DIR`: continue an interrupted run from its latest.pt."""

from __future__ import annotations

from glassloop.tabular.commands import resume_main


def main(argv: list[str]) -> int:
    return resume_main(argv)
