"""The corpora: case scripts whose first line says what the doctor must find.

`tests/doctor/cases/` (written with the rules): `# expect: GL101@18` or `# expect: clean`; exact static findings.
`tests/doctor/tuned/` and `tests/doctor/frozen/` (written before the rules were generalised): each bug is
`CODES@LINE` where CODES lists the rules that name it, static or runtime (`GL112|GL212@26`); a bug counts as
found when any of them is reported within `TOLERANCE` lines. Cases may sit in a project folder (`*/train.py`
beside a pyproject.toml). The frozen part is scored only at the end of a change, never tuned on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
CASES_DIR = HERE / "cases"
TUNED_DIR = HERE / "tuned"
FROZEN_DIR = HERE / "frozen"
TOLERANCE = 3


def cases() -> list[Path]:
    return sorted(CASES_DIR.glob("*.py"))


def header(path: Path) -> str:
    head = path.read_text(encoding="utf-8").split("\n", 1)[0]
    if not head.startswith("# expect:"):
        raise ValueError(f"{path.name}: first line must be '# expect: GLxxx@LINE ...' or '# expect: clean'")
    return head.split(":", 1)[1].strip()


def expected(path: Path) -> set[tuple[str, int]]:
    """The (code, line) pairs a case declares; empty for `# expect: clean`."""
    head = header(path)
    if head == "clean":
        return set()
    return {(code, int(line)) for code, line in re.findall(r"(GL\d{3})@(\d+)", head)}


@dataclass(frozen=True)
class Bug:
    codes: frozenset[str]
    line: int

    def found_by(self, findings: set[tuple[str, int]]) -> bool:
        return any(code in self.codes and abs(line - self.line) <= TOLERANCE for code, line in findings)


def corpus(folder: Path) -> list[Path]:
    """Case scripts of a second corpus: top-level `*.py` and `*/train.py`-style scripts with an expect header."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        if path.read_text(encoding="utf-8").startswith("# expect:"):
            found.append(path)
    return found


def bugs(path: Path) -> list[Bug]:
    head = header(path)
    if head == "clean":
        return []
    return [Bug(frozenset(codes.split("|")), int(line)) for codes, line in re.findall(r"((?:GL\d{3}\|?)+)@(\d+)", head)]


@dataclass
class Score:
    bugs: int = 0
    found: int = 0
    clean: int = 0
    flagged: int = 0

    def line(self, label: str) -> str:
        recall = self.found / max(self.bugs, 1)
        rate = self.flagged / max(self.clean, 1)
        return (f"{label}: bugs at the right line (±{TOLERANCE}) {self.found}/{self.bugs} = {recall:.0%}; "
                f"clean scripts flagged {self.flagged}/{self.clean} = {rate:.0%}")


def score(results: dict[Path, set[tuple[str, int]]], misses: list[str] | None = None) -> Score:
    """`results`: per case, the (code, line) of its warning/error findings."""
    total = Score()
    for path, got in results.items():
        want = bugs(path)
        if not want:
            total.clean += 1
            if got:
                total.flagged += 1
                if misses is not None:
                    misses.append(f"false alarm {path.name}: {sorted(got)}")
            continue
        for bug in want:
            total.bugs += 1
            if bug.found_by(got):
                total.found += 1
            elif misses is not None:
                misses.append(f"missed {path.name}: {'|'.join(sorted(bug.codes))}@{bug.line} (got {sorted(got)})")
    return total
