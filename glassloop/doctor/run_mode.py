"""`glassloop doctor --run SCRIPT [-- ARGS]`: run the user's own script in a subprocess with probes installed
(see `bootstrap`), stop after the first N optimizer steps or a time limit, and turn what was seen into GL2xx
findings at the script's own lines plus one line that says how the run ended.

The script file is never modified; stdin is closed (a script that asks for input fails at once instead of
waiting) and matplotlib draws to the Agg backend (plt.show() opens no window). This module imports no torch:
the child does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from glassloop.doctor.findings import Finding, finding

STEPS = 20
TIMEOUT = 60.0
GRACE = 3.0
STARTUP = 120.0   # the child enforces `timeout` from the script's start; this backstop also covers import torch


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    ending: str = ""
    ok: bool = True            # the script reached training (at least one optimizer step) and did not hang
    steps: int = 0
    seconds: float = 0.0


def run_script(path: str | Path, args: list[str] | None = None, steps: int = STEPS,
               timeout: float = TIMEOUT) -> RunResult:
    """Run `path` under the probes; findings carry the script's path and lines."""
    script = str(path)
    with tempfile.TemporaryDirectory(prefix="glassloop-doctor-") as tmp:
        report = Path(tmp) / "report.json"
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"steps": steps, "report": str(report), "timeout": timeout}))
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1", GLASSLOOP_DOCTOR_RUN="1")
        command = [sys.executable, "-m", "glassloop.doctor.bootstrap", str(config), script, *(args or [])]
        start = time.perf_counter()
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=env, start_new_session=True)
        hung = False
        try:
            _, stderr = child.communicate(timeout=timeout + STARTUP)
        except subprocess.TimeoutExpired:   # stuck where Python's own alarm cannot fire (C code, a signal mask)
            hung = True
            _, stderr = _stop(child)
        seconds = time.perf_counter() - start
        data = json.loads(report.read_text()) if report.exists() else None
    return _result(script, data, stderr.decode("utf-8", "replace"), hung, steps, timeout, seconds)


def _stop(child: subprocess.Popen) -> tuple[bytes, bytes]:
    """SIGTERM first (the child writes its report), then SIGKILL for the whole process group."""
    try:
        os.killpg(child.pid, signal.SIGTERM)
        return child.communicate(timeout=GRACE)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return child.communicate()


def _result(script: str, data: dict | None, stderr: str, hung: bool, budget: int, timeout: float,
            seconds: float) -> RunResult:
    result = RunResult(seconds=seconds)
    if data is None:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        result.ok = False
        result.ending = (f"{script}: the script hangs: no report within {timeout:g} s" if hung
                         else f"{script}: the run died before reporting ({last[:200]})")
        return result
    result.steps = steps = int(data["steps"])
    for item in data["findings"]:
        result.findings.append(finding(script, max(1, int(item["line"])), item["code"], item["detail"]))
    result.findings.sort(key=lambda f: (f.line, f.code))
    result.ending, result.ok = _ending(script, data["ending"], steps, budget, stderr, timeout)
    return result


def _ending(script: str, ending: dict, steps: int, budget: int, stderr: str, timeout: float) -> tuple[str, bool]:
    kind, message, line = ending["kind"], ending.get("message", ""), ending.get("line", 0)
    where = f"{script}:{line}" if line else script
    if kind == "budget":
        return f"{script}: stopped after {steps} optimizer steps (the budget)", True
    if kind == "timeout":
        if steps:
            return f"{script}: time limit ({timeout:g} s) reached after {steps} optimizer steps", True
        return f"{where}: the script hangs or is too slow: no optimizer step within {timeout:g} s", False
    if kind == "exit" and message == "2" and not steps and ("usage:" in stderr or "error:" in stderr):
        return (f"{script}: the script needs arguments (it exited with a usage error); pass them after `--`: "
                f"glassloop doctor --run {script} -- ARGS"), False
    if kind == "crash":
        reads_stdin = "EOFError" in message
        hint = " (it reads stdin, which --run closes)" if reads_stdin else ""
        when = "before training" if not steps else f"after {steps} optimizer steps"
        return f"{where}: the script crashed {when}: {message}{hint}", bool(steps)
    if not steps:
        return f"{script}: the script ended without a single optimizer step: nothing to probe", False
    return f"{script}: the script finished after {steps} optimizer steps (budget {budget})", True
