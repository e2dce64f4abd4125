"""The tuned part of the second corpus, static rules only: every bug with a static rule at its line (±3), no
warning on a clean script. The frozen part is scored by bench/doctor.py only, never asserted here."""

from __future__ import annotations

import pytest

from glassloop.doctor import RULES, check_file

from .corpus import TUNED_DIR, bugs, corpus

TUNED = corpus(TUNED_DIR)
STATIC = {code for code in RULES if code.startswith("GL1")}


@pytest.mark.parametrize("path", TUNED, ids=[p.parent.name if p.name == "train.py" else p.stem for p in TUNED])
def test_tuned_case(path):
    got = {(f.code, f.line) for f in check_file(path) if f.severity != "info"}
    want = [bug for bug in bugs(path) if bug.codes & STATIC]
    if not bugs(path):
        assert got == set()
    for bug in want:
        assert bug.found_by(got), f"{sorted(bug.codes)}@{bug.line} not in {sorted(got)}"


def test_second_corpus_is_varied_and_partly_frozen():
    from .corpus import FROZEN_DIR
    frozen = corpus(FROZEN_DIR)
    assert len(TUNED) >= 25 and len(frozen) >= 15
    texts = [p.read_text() for p in TUNED + frozen]
    for marker in ("DistributedDataParallel", "accelerator.backward", "Critic", "Decoder", "gram(",
                   "safe_globals", "**loader_kwargs", "randint(0, len(self.series)"):
        assert any(marker in t for t in texts), marker
    assert any((p.parent / "pyproject.toml").exists() for p in TUNED)
    assert any((p.parent / "requirements.txt").exists() for p in frozen)
