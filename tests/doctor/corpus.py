"""The corpus: case scripts whose first line says what the doctor must find (`# expect: GL101@18` or clean)."""

from __future__ import annotations

import re
from pathlib import Path

CASES_DIR = Path(__file__).parent / "cases"


def cases() -> list[Path]:
    return sorted(CASES_DIR.glob("*.py"))


def expected(path: Path) -> set[tuple[str, int]]:
    """The (code, line) pairs a case declares; empty for `# expect: clean`."""
    head = path.read_text(encoding="utf-8").split("\n", 1)[0]
    if not head.startswith("# expect:"):
        raise ValueError(f"{path.name}: first line must be '# expect: GLxxx@LINE ...' or '# expect: clean'")
    if head.split(":", 1)[1].strip() == "clean":
        return set()
    return {(code, int(line)) for code, line in re.findall(r"(GL\d{3})@(\d+)", head)}
