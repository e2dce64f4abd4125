"""`python -m glassloop doctor`: exit codes, text/json/sarif output, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .corpus import CASES_DIR

ROOT = Path(__file__).resolve().parents[2]
BUGGY = CASES_DIR / "gl101_missing_zero_grad_bug.py"
CLEAN = CASES_DIR / "gl104_clip_value_clean.py"


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glassloop", "doctor", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_clean_file_exits_0():
    done = doctor(CLEAN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_findings_exit_1_and_print_linter_lines():
    done = doctor(BUGGY, CLEAN)
    assert done.returncode == 1
    assert f"{BUGGY}:16: GL101 " in done.stdout


def test_missing_file_exits_2_with_one_line():
    done = doctor(CLEAN, "does/not/exist.py")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_bad_flag_exits_2_with_one_line():
    done = doctor("--format", "xml", CLEAN)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_syntax_error_is_a_finding_not_a_crash(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("for i in range(3)\n    pass\n")
    done = doctor(bad, "--format", "json")
    assert done.returncode == 1
    [found] = json.loads(done.stdout)
    assert (found["code"], found["line"], found["severity"]) == ("GL100", 1, "error")


def test_json_stdout_is_only_json():
    done = doctor("--format", "json", BUGGY)
    assert done.returncode == 1
    findings = json.loads(done.stdout)
    assert findings == [{"path": str(BUGGY), "line": 16, "code": "GL101", "severity": "error",
                         "message": findings[0]["message"], "fix": findings[0]["fix"]}]
    assert json.loads(doctor("--format", "json", CLEAN).stdout) == []


@pytest.mark.parametrize("path", [BUGGY, CLEAN])
def test_sarif_has_the_2_1_0_shape(path):
    done = doctor("--format", "sarif", path)
    sarif = json.loads(done.stdout)
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [rule["id"] for rule in rules]
    assert "GL101" in ids and all(rule["shortDescription"]["text"] for rule in rules)
    for result in run["results"]:
        assert result["ruleId"] in ids and rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("note", "warning", "error")
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] and location["region"]["startLine"] >= 1
    assert len(run["results"]) == (1 if path == BUGGY else 0)


def test_sarif_validates_against_a_schema_subset():
    import jsonschema
    schema = {
        "type": "object", "required": ["version", "$schema", "runs"],
        "properties": {"version": {"const": "2.1.0"}, "runs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["tool", "results"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {
                    "type": "object", "required": ["name", "rules"]}}},
                "results": {"type": "array", "items": {
                    "type": "object", "required": ["ruleId", "level", "message", "locations"],
                    "properties": {"level": {"enum": ["none", "note", "warning", "error"]},
                                   "message": {"type": "object", "required": ["text"]}}}}}}}},
    }
    jsonschema.validate(json.loads(doctor("--format", "sarif", BUGGY).stdout), schema)
