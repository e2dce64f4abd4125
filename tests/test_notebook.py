"""Lesson 000's practice notebook runs top to bottom and every check says `right`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "training_loop.ipynb"


@pytest.fixture
def python3_kernel(tmp_path, monkeypatch) -> str:
    """A `python3` kernel spec that runs *this* interpreter (the venv), whatever else is installed."""
    from ipykernel.kernelspec import write_kernel_spec

    kernels = tmp_path / "jupyter" / "kernels"
    write_kernel_spec(path=str(kernels / "python3"))  # argv[0] is sys.executable
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))  # searched before the system paths
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # connection files: no $HOME needed
    spec = json.loads((kernels / "python3" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    return "python3"


def test_notebook_is_reproducible_from_its_builder(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-c", (
        "import sys, nbformat; sys.path.insert(0, 'notebooks'); import build_notebook as b; "
        f"nbformat.write(b.build(), {str(tmp_path / 'nb.ipynb')!r})")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "nb.ipynb").read_text() == NOTEBOOK.read_text(), "run notebooks/build_notebook.py"


def test_notebook_executes_and_every_check_is_right(python3_kernel: str, tmp_path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, kernel_name=python3_kernel, timeout=120,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.get("outputs", []))
    verdicts = [line for line in printed.splitlines() if line.startswith("exercise ")]
    assert verdicts == [f"exercise {n}: right" for n in range(1, 7)], printed
