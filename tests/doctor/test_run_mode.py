"""`glassloop doctor --run`: real subprocesses running real scripts under the probes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .corpus import TUNED_DIR

ROOT = Path(__file__).resolve().parents[2]


def doctor(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glassloop", "doctor", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout, stdin=subprocess.DEVNULL)


def test_runtime_findings_point_at_the_users_lines_and_merge_with_static_ones():
    script = TUNED_DIR / "t18_broadcast_n_vs_n1_bug.py"
    before = script.read_bytes()
    done = doctor("--run", script, "--format", "json")
    assert done.returncode == 1, done.stderr
    found = {(f["code"], f["line"]) for f in json.loads(done.stdout)}
    assert {("GL130", 16), ("GL205", 16)} <= found
    assert "stopped after 20 optimizer steps" in done.stderr
    assert script.read_bytes() == before   # never modified


def test_backward_under_no_grad_is_caught_before_the_crash():
    done = doctor("--run", TUNED_DIR / "t22_backward_under_no_grad_bug.py", "--format", "json")
    assert done.returncode == 1
    assert ("GL214", 16) in {(f["code"], f["line"]) for f in json.loads(done.stdout)}
    assert "crashed before training" in done.stderr and len(done.stderr.strip().splitlines()) == 1


PROBED = textwrap.dedent("""\
    import sys
    import torch
    from torch import nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 3), torch.randint(0, 4, (16,))
    total = 0
    for step in range(int(sys.argv[1])):
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total = total + loss
""")


def test_runtime_probes_on_a_script_with_arguments(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(PROBED)
    done = doctor("--run", script, "--steps", "5", "--format", "json", "--", "50")
    found = {(f["code"], f["line"]) for f in json.loads(done.stdout)}
    assert {("GL212", 10), ("GL201", 11), ("GL215", 13)} <= found, found
    assert "stopped after 5 optimizer steps" in done.stderr


@pytest.mark.parametrize(("body", "says"), [
    ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--data', required=True)\np.parse_args()\n",
     "needs arguments"),
    ("name = input('data file? ')\n", "reads stdin"),
    ("import time\nwhile True:\n    time.sleep(0.1)\n", "hangs"),
    ("print('nothing to train')\n", "without a single optimizer step"),
])
def test_every_ending_gets_one_clear_line(tmp_path, body, says):
    script = tmp_path / "script.py"
    script.write_text(body)
    done = doctor("--run", script, "--timeout", "3")
    assert done.returncode == 1
    assert says in done.stderr and "Traceback" not in done.stderr, done.stderr
