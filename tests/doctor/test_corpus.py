"""Every corpus case gives exactly its declared findings; every rule has a buggy and a clean case."""

from __future__ import annotations

import pytest

from glassloop.doctor import RULES, check_file

from .corpus import cases, expected

CASES = cases()


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case_gives_exactly_its_expected_findings(path):
    got = {(f.code, f.line) for f in check_file(path) if f.severity != "info"}
    assert got == expected(path)


def test_every_static_rule_has_a_triggering_case_and_a_clean_lookalike():
    triggered = {code for path in CASES for code, _ in expected(path)}
    static = {code for code in RULES if code.startswith("GL1") and code != "GL100"}
    assert static <= triggered, f"rules without a buggy case: {sorted(static - triggered)}"
    for code in static:
        prefix = code.lower()
        lookalikes = [p for p in CASES if not expected(p) and prefix[2:] in p.stem.split("_", 1)[0] + p.stem]
        assert lookalikes, f"{code} has no clean look-alike case (name it {prefix}_..._clean.py)"


def test_corpus_has_varied_styles():
    texts = [p.read_text() for p in CASES]
    assert sum("while " in t for t in texts) >= 2
    assert sum("class " in t and "def fit" in t for t in texts) >= 1
    assert sum("DataLoader(" in t for t in texts) >= 5
    assert len([p for p in CASES if not expected(p)]) >= 25
