"""Every corpus case is valid Python that runs (tiny CPU data), all in one subprocess to pay torch's import once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from .corpus import CASES_DIR, cases

RUNNER = textwrap.dedent("""
    import json, os, runpy, signal, sys, tempfile, time, io, contextlib
    import torch
    torch.set_num_threads(1)
    results = {}
    def on_alarm(signum, frame):
        raise TimeoutError("case ran past its time limit")
    signal.signal(signal.SIGALRM, on_alarm)
    for path in sys.argv[1:]:
        start = time.perf_counter()
        signal.alarm(20)
        try:
            with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
                os.chdir(tmp)
                runpy.run_path(path, run_name="__main__")
            results[path] = ["ok", round(time.perf_counter() - start, 2)]
        except BaseException as error:
            results[path] = ["fail", f"{type(error).__name__}: {error}"]
        finally:
            signal.alarm(0)
    print(json.dumps(results))
""")


def test_every_case_script_runs():
    paths = [str(p) for p in cases()]
    assert len(paths) >= 60
    done = subprocess.run([sys.executable, "-c", RUNNER, *paths], capture_output=True, text=True, timeout=300,
                          cwd=CASES_DIR)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    failed = {p: r[1] for p, r in results.items() if r[0] != "ok"}
    assert not failed, failed
