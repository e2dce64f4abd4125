"""Linter-fast start: the static doctor imports no torch/mlflow/pandas/matplotlib; the pre-commit hook works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "mlflow", "pandas", "matplotlib")
BUGGY = ("import torch\nfrom torch import nn\nmodel = nn.Linear(1, 1)\n"
         "opt = torch.optim.SGD(model.parameters(), lr=0.1)\nfor _ in range(3):\n"
         "    loss = model(torch.ones(2, 1)).sum()\n    loss.backward()\n    opt.step()\n")
CLEAN = "import torch\n\nx = torch.zeros(3)\n"


def imported_modules(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "glassloop", "doctor", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "glassloop" in names, "importtime output not parsed"
    return names


def test_static_doctor_imports_nothing_heavy(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(BUGGY)
    names = imported_modules(str(script), "--format", "sarif")
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


def test_pre_commit_hook_runs_on_a_buggy_and_a_clean_file(tmp_path):
    pytest.importorskip("pre_commit")
    from pre_commit.clientlib import load_manifest

    [hook_def] = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))   # validated by pre-commit's own schema
    assert (hook_def["id"], hook_def["entry"], hook_def["language"], hook_def["types"]) == (
        "glassloop-doctor", "glassloop doctor", "python", ["python"])
    repo = tmp_path / "project"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    (repo / "buggy.py").write_text(BUGGY)
    (repo / "clean.py").write_text(CLEAN)
    # `repo: local` + `language: system` reuses this environment's `glassloop` (offline; only the package
    # registries are reachable, so pre-commit cannot build a fresh environment from the repository)
    bin_dir = Path(sys.executable).parent
    (repo / ".pre-commit-config.yaml").write_text(
        "repos:\n- repo: local\n  hooks:\n  - id: glassloop-doctor\n    name: glassloop doctor\n"
        f"    entry: {bin_dir / 'glassloop'} doctor\n    language: system\n    types: [python]\n")
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "PRE_COMMIT_HOME": str(tmp_path / "cache")}

    def hook(*files: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", "glassloop-doctor", "--files", *files],
                              cwd=repo, capture_output=True, text=True, env=env, timeout=300)

    clean, buggy = hook("clean.py"), hook("buggy.py")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert buggy.returncode == 1 and "buggy.py:6: GL101" in buggy.stdout, buggy.stdout + buggy.stderr
