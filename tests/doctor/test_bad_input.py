"""Bad input to `glassloop doctor`: one line on stderr and exit 2; directories are checked file by file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLEAN = "import torch\nx = torch.zeros(3)\n"
BUGGY = ("import torch\nfrom torch import nn\nmodel = nn.Linear(1, 1)\n"
         "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nfor _ in range(3):\n"
         "    loss = model(torch.ones(2, 1)).sum()\n    loss.backward()\n    opt.step()\n")


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glassloop", "doctor", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def one_line(done: subprocess.CompletedProcess) -> bool:
    return done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("content", [b"\x00\x01\x02binary", b"\xff\xfe\x81 not utf-8"])
def test_binary_file(tmp_path, content):
    path = tmp_path / "blob.py"
    path.write_bytes(content)
    assert one_line(doctor(path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.py"
    path.write_text(CLEAN)
    path.chmod(0)
    assert one_line(doctor(path))


def test_directory_is_checked_recursively_skipping_hidden_and_venv(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train.py").write_text(BUGGY)
    (tmp_path / "ok.py").write_text(CLEAN)
    for skipped in (".hidden", "venv"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "bad.py").write_text(BUGGY)
    done = doctor(tmp_path, "--format", "json")
    assert done.returncode == 1
    assert {(Path(f["path"]).name, f["code"]) for f in json.loads(done.stdout)} == {("train.py", "GL101")}


def test_directory_without_python_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    done = doctor(tmp_path)
    assert one_line(done) and "no *.py files" in done.stderr


def test_run_takes_one_script(tmp_path):
    (tmp_path / "a.py").write_text(CLEAN)
    (tmp_path / "b.py").write_text(CLEAN)
    assert one_line(doctor("--run", tmp_path / "a.py", tmp_path / "b.py"))
