"""The shape of the package (issue 11): small modules, small functions, a light `import glassloop`.
The layer contracts themselves are checked by `lint-imports` in `make test` (pyproject.toml)."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "glassloop"
LONG_ALLOWED = {("loop.py", "heartbeat")}  # the heartbeat reads as one screen, like the lesson


def test_no_module_over_500_lines_and_no_function_over_60():
    too_big = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 500:
            too_big.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60 and (path.name, node.name) not in LONG_ALLOWED:
                    too_big.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}() is {length} lines")
    assert not too_big, too_big


def test_import_glassloop_stays_light():
    code = ("import sys, glassloop as gl; gl.fit; heavy = [m for m in ('mlflow', 'pandas', 'matplotlib') "
            "if m in sys.modules]; print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "", f"import glassloop pulled in {done.stdout.strip()}"
