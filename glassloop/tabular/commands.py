"""Moved: the library side of `glassloop fit | resume | predict` is glassloop.tabular.runs, the argv side is
glassloop.cli.fit / resume / predict. These names stay importable here until `glassloop/cli/sweep.py` imports
them from glassloop.tabular.rundir."""

from glassloop.tabular.rundir import check_output_file, write_output_file

__all__ = ["check_output_file", "write_output_file"]
