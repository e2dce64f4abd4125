"""`glassloop fit DATA --target COL --out DIR`: train an MLP on a table, with baselines."""

from __future__ import annotations

from glassloop.tabular.commands import fit_main


def main(argv: list[str]) -> int:
    return fit_main(argv)
