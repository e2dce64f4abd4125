"""`glassloop predict DIR DATA [--out FILE]`: a run's best.pt and stored transform on a new table."""

from __future__ import annotations

from glassloop.cli import ArgumentParser
from glassloop.cli.fit import add_stream_flags


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="glassloop predict", allow_abbrev=False,
                            description="Predict a table with a run's best.pt and its stored transform.")
    parser.add_argument("run_dir", help="a 'glassloop fit' run directory")
    parser.add_argument("data", help="the table to predict (.csv or .parquet), with the training feature columns")
    parser.add_argument("--out", help="CSV to write (default: standard output)")
    add_stream_flags(parser)
    args = parser.parse_args(argv)
    from glassloop.tabular.runs import predict_run

    return predict_run(args.run_dir, args.data, args.out, args.stream, args.stream_threshold_mb)
