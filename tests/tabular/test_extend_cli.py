"""`glassloop resume DIR --epochs N` extends a finished run, bitwise as if it had run N epochs from the start;
the CLI's new training flags reach gl.fit (issue 12 item 5, issue 15)."""

import json

import torch

from glassloop.cli import main
from glassloop.core.checkpoint import load_checkpoint
from glassloop.tabular import datasets

FLAGS = ["--target", "yield_t_ha", "--time-column", "date", "--no-mlflow", "--baselines", "none"]


def fit(out, *extra):
    return main(["fit", str(datasets.path("crop")), *FLAGS, "--out", str(out), *extra])


def test_resume_epochs_extends_a_finished_run_exactly(tmp_path, capsys):
    assert fit(tmp_path / "short", "--epochs", "3") == 0
    assert main(["resume", str(tmp_path / "short"), "--no-mlflow"]) == 0
    assert "--epochs N" in capsys.readouterr().out  # the finished run names the command that extends it
    assert main(["resume", str(tmp_path / "short"), "--no-mlflow", "--epochs", "6"]) == 0
    assert fit(tmp_path / "long", "--epochs", "6") == 0
    short, long = (load_checkpoint(tmp_path / name / "latest.pt") for name in ("short", "long"))
    assert all(torch.equal(short["model"][k], long["model"][k]) for k in long["model"])
    assert json.loads((tmp_path / "short" / "config.json").read_text())["options"]["epochs"] == 6
    assert (tmp_path / "short" / "history.csv").read_text().count("\n") == 7  # header + 6 epochs, 1-based


def test_accumulate_precision_and_tensorboard_flags_reach_the_run(tmp_path):
    assert fit(tmp_path / "run", "--epochs", "2", "--accumulate", "2", "--precision", "bf16",
               "--tensorboard", str(tmp_path / "tb")) == 0
    options = json.loads((tmp_path / "run" / "config.json").read_text())["options"]
    assert options["accumulate"] == 2 and options["precision"] == "bf16"
    assert any((tmp_path / "tb").iterdir())
    assert main(["resume", str(tmp_path / "run"), "--epochs", "0"]) == 2


def test_check_finite_every_reaches_the_run_and_bad_values_exit_2(tmp_path, capsys):
    assert fit(tmp_path / "run", "--epochs", "2", "--check-finite-every", "4") == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["options"]["check_finite_every"] == 4
    capsys.readouterr()
    assert fit(tmp_path / "bad", "--epochs", "2", "--check-finite-every", "0") == 2
    error = capsys.readouterr().err.strip()
    assert "--check-finite-every" in error and "Traceback" not in error and len(error.splitlines()) == 1
