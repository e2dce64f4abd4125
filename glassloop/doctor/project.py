"""The torch version a script's project requires, read from pyproject.toml / requirements*.txt / setup.cfg
beside the script (or in a few parent folders). torch >= 2.6 makes `torch.load(..., weights_only=True)` the
default, which changes what GL115 should say.
"""

from __future__ import annotations

import re
from pathlib import Path

FILES = ("pyproject.toml", "requirements.txt", "requirements-dev.txt", "requirements.in", "setup.cfg",
         "environment.yml")
REQUIREMENT = re.compile(r"""(?<![\w-])torch\s*(\[[^\]]*\])?\s*(?P<spec>(?:[<>=~!]=?\s*[\d.*]+\s*,?\s*)+)""")
POETRY = re.compile(r"""^\s*torch\s*=\s*["'{][^"'\n]*?(?P<spec>[\^~>=<]*\s*[\d.]+)""", re.M)
PARENTS = 3


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def minimum(spec: str) -> tuple[int, ...] | None:
    """Lowest torch version a specifier allows: '>=2.6,<3' -> (2, 6); '==2.7.1' -> (2, 7, 1); '<2.5' -> None."""
    lows = []
    for op, version in re.findall(r"([<>=~!^]=?|==)\s*([\d.*]+)", spec):
        if op in (">=", "==", "~=", "^", "~", ">"):
            lows.append(_version(version))
    return max(lows) if lows else None


def torch_minimum(script: Path) -> tuple[int, ...] | None:
    """The minimum torch version required by the nearest project files around `script`, if any says so."""
    folder = script.resolve().parent
    for _ in range(PARENTS + 1):
        for name in FILES:
            path = folder / name
            if not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for match in list(REQUIREMENT.finditer(text)) + list(POETRY.finditer(text)):
                found = minimum(match.group("spec"))
                if found is not None:
                    return found
        if (folder / ".git").exists() or folder.parent == folder:
            break
        folder = folder.parent
    return None
