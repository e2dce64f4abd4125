"""Render findings as text (linter lines), JSON (a list) or SARIF 2.1.0 (for code-scanning tools)."""

from __future__ import annotations

import json

from glassloop.doctor.findings import RULES, Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"info": "note", "warning": "warning", "error": "error"}


def text(findings: list[Finding]) -> str:
    return "\n".join(f.render() for f in findings)


def as_json(findings: list[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2)


def sarif(findings: list[Finding]) -> str:
    used = sorted({f.code for f in findings} | {c for c in RULES if c.startswith("GL1")})
    rules = [{
        "id": code,
        "name": code,
        "shortDescription": {"text": RULES[code].title},
        "fullDescription": {"text": f"{RULES[code].title}: {RULES[code].why}"},
        "help": {"text": f"Fix: {RULES[code].fix}"},
        "defaultConfiguration": {"level": LEVELS[RULES[code].severity]},
    } for code in used]
    index = {code: i for i, code in enumerate(used)}
    results = [{
        "ruleId": f.code,
        "ruleIndex": index[f.code],
        "level": LEVELS[f.severity],
        "message": {"text": f"{f.message} Fix: {f.fix}"},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": f.path.replace("\\", "/")},
            "region": {"startLine": max(1, f.line)},
        }}],
    } for f in findings]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "glassloop doctor", "version": _version(),
                                "rules": rules}},
            "results": results,
        }],
    }
    return json.dumps(document, indent=2)


def _version() -> str:
    from glassloop import __version__

    return __version__
