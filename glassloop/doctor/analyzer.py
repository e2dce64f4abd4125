"""Static analysis entry points: `check_source(text)` and `check_file(path)`."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from glassloop.doctor.data_rules import DataRules
from glassloop.doctor.expr_rules import ExprRules
from glassloop.doctor.findings import Finding, finding
from glassloop.doctor.flow import Flow, roots
from glassloop.doctor.loop_rules import LoopRules
from glassloop.doctor.models import Values
from glassloop.doctor.project import torch_minimum
from glassloop.doctor.symbols import collect
from glassloop.doctor.values import Source
from glassloop.errors import DataError

IGNORE = re.compile(r"#\s*glassloop:\s*ignore(?:\[([A-Z0-9,\s]+)\])?", re.I)


def suppressions(text: str) -> dict[int, set[str] | None]:
    """line -> codes ignored there (None = every code)."""
    out: dict[int, set[str] | None] = {}
    if "glassloop" not in text:
        return out
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return out
    for token in tokens:
        if token.type == tokenize.COMMENT:
            match = IGNORE.search(token.string)
            if match:
                codes = match.group(1)
                out[token.start[0]] = {c.strip().upper() for c in codes.split(",") if c.strip()} if codes else None
    return out


def check_source(text: str, path: str = "<string>", torch_requirement: tuple[int, ...] | None = None) -> list[Finding]:
    """Check a training script's source; findings sorted by line.

    `torch_requirement`: the minimum torch version the script's project requires (`check_file` reads it from
    the project files beside the script); it decides whether `torch.load` is safe by default (GL115).
    """
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as error:
        return [finding(path, error.lineno or 1, "GL100", error.msg)]
    except ValueError as error:   # NUL bytes (Python 3.11 raises ValueError, not SyntaxError)
        return [finding(path, 1, "GL100", str(error))]
    found: dict[tuple[int, str], Finding] = {}

    def emit(line: int, code: str, detail: str = "", severity: str | None = None) -> None:
        found.setdefault((line, code), finding(path, line, code, detail, severity))

    nodes = list(ast.walk(tree))
    symbols = collect(tree, nodes)
    source = Source(tree, nodes)
    values = Values(source, symbols)
    flows = []
    for body, ctx in roots(tree, symbols):
        flow = Flow(symbols)
        flow.run(body, ctx)
        flows.append(flow)
        LoopRules(flow, symbols, values, emit).run()
    ExprRules(source, values, symbols, flows, emit).run()
    DataRules(source, values, symbols, flows, emit, torch_requirement).run()
    all_events = [e for f in flows for e in f.events]
    has_optimizer = any(k == "optimizer" for k in symbols.kinds.values()) and any(
        symbols.kinds.get(n) == "optimizer" for n in symbols.calls)
    if has_optimizer and not any(e.kind == "STEP" for e in all_events):
        backward = [e for e in all_events if e.kind == "BW"]
        if backward:
            emit(min(e.line for e in backward), "GL120", "")
    ignored = suppressions(text)
    results = []
    for (line, code), item in sorted(found.items()):
        codes = ignored.get(line, set())
        if line in ignored and (codes is None or code in codes):
            continue
        results.append(item)
    return results


def check_file(path: str | Path) -> list[Finding]:
    """Check a script on disk. Raises `DataError` when the file is missing or unreadable."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"cannot check {str(file)!r}: no such file; expected a Python training script") from None
    except IsADirectoryError:
        raise DataError(f"cannot check {str(file)!r}: it is a directory; pass the folder to the CLI, "
                        "which checks the *.py files inside") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {str(file)!r}: {error}; expected a readable UTF-8 Python file") from None
    if "\x00" in text:
        raise DataError(f"cannot read {str(file)!r}: it is a binary file (NUL bytes); expected a Python script")
    return check_source(text, str(path), torch_minimum(file))
