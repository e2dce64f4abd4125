"""examples/ teach by diff: every file runs (a short run), and each one changes only a few lines of the last."""

from __future__ import annotations

import ast
import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))
# what each example must print when it worked (the feature it adds is visible in its output)
EXPECTED = {
    "01_loop_by_hand.py": "epoch 2/2  train_loss",
    "02_fit.py": "final train_loss",
    "03_validation.py": "held-out: {'loss'",
    "04_schedule_and_clip.py": "pre-clip grad norm by epoch",
    "05_early_stopping_checkpoints.py": "best.pt: epoch",
    "06_mlflow.py": "MLflow run ",
}


def code_lines(path: Path) -> list[str]:
    """The file without its module docstring (the docstring says what changed; the code is what is diffed)."""
    source = path.read_text()
    return source.splitlines()[ast.parse(source).body[0].end_lineno:]


def test_examples_are_numbered_in_sequence() -> None:
    assert [p.name for p in EXAMPLES] == list(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "GLASSLOOP_EXAMPLE_EPOCHS": "2", "GLASSLOOP_EXAMPLE_OUT": str(tmp_path / "runs"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'stray.db'}"}  # nothing may land in the repository
    done = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert EXPECTED[path.name] in done.stdout, done.stdout[-3000:]


@pytest.mark.parametrize("previous, current", list(zip(EXAMPLES, EXAMPLES[1:])), ids=lambda p: p.name)
def test_each_example_adds_one_small_change(previous: Path, current: Path) -> None:
    changed = [line for line in difflib.unified_diff(code_lines(previous), code_lines(current), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    added = sum(line.startswith("+") for line in changed)
    removed = len(changed) - added
    # 01 -> 02 replaces the hand-written loop by one call; after that each step adds a handful of lines
    assert added <= 10 and (removed <= 4 or current.name == "02_fit.py"), "\n".join(changed)
    assert added + removed > 0


def test_every_example_trains_the_same_data_and_model() -> None:
    def block(path: Path) -> list[str]:
        lines = code_lines(path)
        start = lines.index("# The ssa workload: 2000 close approaches, 4 features, risk = sigmoid of a linear score.")
        model = next(i for i, line in enumerate(lines) if line.startswith("model = nn.Sequential"))
        return lines[start:start + 6] + [lines[model]]

    first = block(EXAMPLES[0])
    assert all(block(path) == first for path in EXAMPLES[1:])
