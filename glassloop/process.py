"""Process-level guards around one `fit`: the intra-op thread count (decided once, from the model and the
machine, never from the momentary load: glassloop/core/rules.py) and SIGINT/SIGTERM handlers that ask the loop
to stop after the current step, so the Checkpoint saves and the run can be resumed."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import torch

from glassloop.core import distributed
from glassloop.core.rules import choose_threads


@contextlib.contextmanager
def process_guards(run: Any) -> Iterator[None]:
    previous = torch.get_num_threads()
    rows = run.options.batch_size or getattr(run.train, "n", 1)
    wanted = choose_threads(run.options.threads, run.device, rows, sum(p.numel() for p in run.parameters))
    run.state.config["threads"] = wanted or previous  # recorded in the run (latest.pt, MLflow params)
    if wanted and wanted != previous:
        torch.set_num_threads(wanted)
    handlers = install_signal_handlers(run)
    try:
        yield
    finally:
        distributed.leave(run.created_group)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        if wanted and wanted != previous:
            torch.set_num_threads(previous)


def install_signal_handlers(run: Any) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    state = run.state

    def handle(signum: int, frame: Any) -> None:
        if state.interrupted_by is not None:  # second signal: abort now (files are written atomically)
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)  # the previous behaviour: KeyboardInterrupt, or SIGTERM's exit 143
            return
        # Order matters: whoever sees should_stop set must also see the signal (Checkpoint reads them so).
        state.interrupted_by = signum
        state.should_stop = True  # the stop reason stays free for whoever decides to stop next (a monitor)
        state.interrupt_reason = (f"interrupted by {signal.Signals(signum).name} at epoch {state.epoch + 1}, "
                                  f"step {state.step}; resume with gl.Checkpoint(run_dir, resume=True) or "
                                  "`glassloop resume DIR`")

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, handle)
        except (ValueError, OSError):
            pass
    return previous
