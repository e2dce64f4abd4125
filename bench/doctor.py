"""Loop doctor benchmark: recall and false-positive rate on the corpora, start-up time, and --run overhead.

- `cases/`: the corpus written with the rules (exact code@line).
- `tuned/` and `frozen/`: the second corpus, written before the rules were generalised; a bug counts when one
  of its rules (static or runtime) is reported within ±3 lines. The frozen part was never tuned on.
Scores are reported static, --run, and both together. Run: .venv/bin/python bench/doctor.py [--no-run]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from glassloop.doctor import check_file, check_source  # noqa: E402
from glassloop.doctor.run_mode import run_script  # noqa: E402
from tests.doctor.corpus import CASES_DIR, FROZEN_DIR, TUNED_DIR, corpus, expected, score  # noqa: E402
from tests.doctor.test_static import generated_script  # noqa: E402

OVERHEAD_SCRIPTS = ["t11_plain_mlp_no_eval_clean.py", "t03_actor_critic_clean.py", "t14_wgan_critic_clean.py"]


def first_corpus() -> None:
    bugs = found = clean = flagged = 0
    for path in sorted(CASES_DIR.glob("*.py")):
        want = expected(path)
        got = {(f.code, f.line) for f in check_file(path) if f.severity != "info"}
        bugs, found = bugs + len(want), found + len(want & got)
        clean += not want
        flagged += bool(not want and got)
    print(f"cases/ (written with the rules): recall {found}/{bugs}, clean flagged {flagged}/{clean}")


def second_corpus(folder: Path, label: str, with_run: bool) -> None:
    paths = corpus(folder)
    static = {p: {(f.code, f.line) for f in check_file(p) if f.severity != "info"} for p in paths}
    print(score(static).line(f"{label} static"))
    if not with_run:
        return
    run = {}
    for path in paths:
        result = run_script(path.relative_to(ROOT), [], timeout=60)
        run[path] = {(f.code, f.line) for f in result.findings if f.severity != "info"}
    print(score(run).line(f"{label} --run "))
    misses: list[str] = []
    print(score({p: static[p] | run[p] for p in paths}, misses).line(f"{label} both  "))
    for line in misses:
        print("   ", line)


def wall(command: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, cwd=ROOT, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def startup() -> None:
    script = str(TUNED_DIR / "t15_softmax_forward_ce_in_function_bug.py")
    cli = wall([sys.executable, "-m", "glassloop", "doctor", script])
    bare = wall([sys.executable, "-c", "pass"])
    torch = wall([sys.executable, "-c", "import torch"])
    source = generated_script(60)
    check_source(source)
    start = time.perf_counter()
    check_source(source)
    analysis = time.perf_counter() - start
    print(f"start-up: `glassloop doctor FILE` {cli * 1000:.0f} ms median (bare interpreter {bare * 1000:.0f} ms, "
          f"`import torch` alone {torch * 1000:.0f} ms); analysis of a {source.count(chr(10))}-line script "
          f"{analysis * 1000:.0f} ms")


def run_overhead() -> None:
    for name in OVERHEAD_SCRIPTS:
        path = TUNED_DIR / name
        plain = wall([sys.executable, str(path)], repeats=3)
        probed = statistics.median(run_script(path, [], steps=10**6).seconds for _ in range(3))
        print(f"--run overhead {name}: plain {plain:.2f} s, under --run {probed:.2f} s ({probed / plain:.2f}x, "
              "both with interpreter + torch start)")


def main() -> int:
    with_run = "--no-run" not in sys.argv
    first_corpus()
    second_corpus(TUNED_DIR, "tuned ", with_run)
    second_corpus(FROZEN_DIR, "frozen", with_run)
    startup()
    if with_run:
        run_overhead()
    return 0


if __name__ == "__main__":
    sys.exit(main())
