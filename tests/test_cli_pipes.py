"""Every command survives a reader that closes its stdout early, and every command refuses an unknown flag
with one line and exit 2 (issue 12: never a traceback)."""

import subprocess
import sys

import pytest

from glassloop.cli import COMMANDS

BUGGY = "import torch\nfor x, y in loader:\n    loss = model(x)\n    loss.backward()\n    optimizer.step()\n"


def first_line_then_close(args, cwd):
    """Run `glassloop ARGS`, read one line, close the pipe, and return (exit code, stderr)."""
    process = subprocess.Popen([sys.executable, "-m", "glassloop", *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline()  # it printed something
    process.stdout.close()  # the reader goes away, as `| head -1` does
    stderr = process.stderr.read()
    return process.wait(timeout=300), stderr


@pytest.mark.parametrize("args", [["--help"], ["show-loop"], ["lesson"], ["lesson", "--all"],
                                  ["doctor", "buggy.py", "--format", "sarif"], ["diagnose", "run"]])
def test_a_closed_stdout_is_never_a_traceback(args, tmp_path):
    (tmp_path / "buggy.py").write_text(BUGGY)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.csv").write_text(
        "epoch,train_loss,val_loss\n" + "".join(f"{e},{1 / e},{1.2 / e}\n" for e in range(1, 30)))
    code, stderr = first_line_then_close(args, tmp_path)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert code in (0, 1)  # 1: the doctor found the bug


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_unknown_flag_exits_2_with_one_line_on_every_command(name, capsys):
    from glassloop.cli import main

    assert main([name, "--no-such-flag"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"glassloop {name}: error: "), err
