"""`glassloop resume DIR`: continue an interrupted `glassloop fit` run (from latest.pt, or from its config.json
when it was killed before the first checkpoint)."""

from __future__ import annotations

from glassloop.cli import ArgumentParser


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="glassloop resume", allow_abbrev=False,
                            description="Continue an interrupted 'glassloop fit' run from its latest.pt.")
    parser.add_argument("run_dir", help="the run directory (holds config.json and latest.pt)")
    parser.add_argument("--no-mlflow", dest="mlflow", action="store_false", help="do not log to MLflow")
    parser.add_argument("--epochs", type=int, default=None,
                        help="train to N epochs in all: extends a finished run (exact when its schedule allows)")
    args = parser.parse_args(argv)
    from glassloop.tabular.runs import resume_run

    return resume_run(args.run_dir, args.mlflow, epochs=args.epochs)
