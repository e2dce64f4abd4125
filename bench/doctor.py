"""Loop doctor benchmark: recall and false-positive rate over tests/doctor/cases, and time for a 1,000-line script.

Recall: declared bugs (code@line) found with the right code at the right line. False-positive rate: clean cases
with any warning/error finding. Run: .venv/bin/python bench/doctor.py
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from glassloop.doctor import check_file, check_source  # noqa: E402

CASES = ROOT / "tests" / "doctor" / "cases"


def expected(path: Path) -> set[tuple[str, int]]:
    head = path.read_text(encoding="utf-8").split("\n", 1)[0]
    return {(code, int(line)) for code, line in re.findall(r"(GL\d{3})@(\d+)", head)}


def generated(lines: int = 1000) -> str:
    block = (
        "def train_{i}(model, loader, optimizer, criterion):\n"
        "    model.train()\n"
        "    for xb, yb in loader:\n"
        "        optimizer.zero_grad()\n"
        "        loss = criterion(model(xb), yb)\n"
        "        loss.backward()\n"
        "        optimizer.step()\n\n\n"
        "@torch.no_grad()\n"
        "def evaluate_{i}(model, loader, criterion):\n"
        "    model.eval()\n"
        "    return sum(criterion(model(xb), yb).item() for xb, yb in loader)\n\n\n"
    )
    parts, i = ["import torch\nfrom torch import nn\n\n\n"], 0
    calls = ["model = nn.Linear(1, 1)\n", "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"]
    while sum(p.count("\n") for p in parts + calls) < lines:
        parts.append(block.format(i=i))
        calls += [f"train_{i}(model, [], opt, nn.MSELoss())\n", f"evaluate_{i}(model, [], nn.MSELoss())\n"]
        i += 1
    return "".join(parts + calls)


def main() -> int:
    bugs = found = clean = flagged = 0
    misses, false_alarms = [], []
    for path in sorted(CASES.glob("*.py")):
        want = expected(path)
        got = {(f.code, f.line) for f in check_file(path) if f.severity != "info"}
        if want:
            bugs += len(want)
            found += len(want & got)
            misses += [f"{path.name}: {c}@{line}" for c, line in sorted(want - got)]
        else:
            clean += 1
            if got:
                flagged += 1
                false_alarms.append(f"{path.name}: {sorted(got)}")
    source = generated()
    check_source(source)   # warm-up
    start = time.perf_counter()
    repeats = 5
    for _ in range(repeats):
        check_source(source)
    seconds = (time.perf_counter() - start) / repeats
    print(f"corpus: {bugs} declared bugs in {len(list(CASES.glob('*.py'))) - clean} buggy cases, {clean} clean cases")
    print(f"recall: {found}/{bugs} = {found / max(bugs, 1):.1%} (right code at the right line)")
    print(f"false-positive rate: {flagged}/{clean} = {flagged / max(clean, 1):.1%} of clean cases flagged")
    print(f"time: {seconds * 1000:.0f} ms for a {source.count(chr(10))}-line script")
    for line in misses + false_alarms:
        print("  ", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
