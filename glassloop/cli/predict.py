"""`glassloop predict DIR DATA [--out FILE]`: predict a table with a run's best.pt."""

from __future__ import annotations

from glassloop.tabular.commands import predict_main


def main(argv: list[str]) -> int:
    return predict_main(argv)
