"""Event names, their documented order, callback bands, and `show_loop()`.

A callback is any object with some of the methods below, each taking one `LoopState`. Callbacks run in bands
(producers, user, monitors, checkpoint, reporters) so that, at the end of an epoch, early stopping has decided
before the checkpoint is written, and the checkpoint is written before the console and MLflow report it.
Stopping is `state.stop(reason)`, never an exception.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from glassloop.errors import CallbackError, GlassloopError

EVENTS = ("on_fit_start", "on_epoch_start", "on_batch_start", "on_after_backward", "on_batch_end",
          "on_epoch_end", "on_fit_end", "on_exception")
BANDS = ("producers", "user", "monitors", "checkpoint", "reporters")

LOOP_TEXT = """\
on_fit_start
for epoch in range(epochs):
    on_epoch_start
    model.train()
    for batch in batches:                        # seeded permutation + index slicing
        on_batch_start
        optimizer.zero_grad()                    # 1. clear the old gradients
        outputs = model(inputs)                  # 2. forward
        loss = loss_fn(outputs, targets)         # 3. loss (one scalar)
        loss.backward()                          # 4. backward: fill .grad
        on_after_backward
        grad_norm = clip_grad_norm_(params, max) # 5. record the pre-clip norm (and clip)
        optimizer.step()                         # 6. update the weights
        scheduler.step()                         #    only per-batch schedules (onecycle, warmup)
        on_batch_end
    val_loss = evaluate(model, val)              # model.eval() + torch.no_grad()
    scheduler.step()                             #    per-epoch schedules (plateau gets val_loss)
    on_epoch_end                                 # monitors -> checkpoint -> reporters
on_fit_end                                       # (on_exception if something raised)"""


def band_of(callback: Any) -> int:
    band = getattr(callback, "band", "user")
    return BANDS.index(band) if band in BANDS else 1


class CallbackList:
    """Calls each event on every callback that has it, in band order; wraps failures in `CallbackError`."""

    def __init__(self, callbacks: Iterable[Any]) -> None:
        self.callbacks = sorted(callbacks, key=band_of)  # sorted() is stable: user order kept within a band
        self.by_event = {event: [(c, getattr(c, event)) for c in self.callbacks if callable(getattr(c, event, None))]
                         for event in EVENTS}

    def has(self, event: str) -> bool:
        return bool(self.by_event[event])

    def watch_steps(self) -> bool:
        """Some per-batch callback may read or replace the step's tensors (so the step must be the lesson's
        own, per tensor). A callback that only counts batches says so with `reads_step = False`."""
        return any(getattr(callback, "reads_step", True) for event in ("on_batch_start", "on_batch_end")
                   for callback, _ in self.by_event[event])

    def __call__(self, event: str, state: Any) -> None:
        if event == "on_exception":
            return self._exception(state)
        for callback, method in self.by_event[event]:
            try:
                method(state)
            except GlassloopError:
                raise  # already a clear message (e.g. a callback's own ConfigError)
            except Exception as error:
                raise CallbackError(f"callback {type(callback).__name__} failed in {event}: "
                                    f"{type(error).__name__}: {error}") from error

    def _exception(self, state: Any) -> None:
        """Every callback hears about the failure (MLflow must mark its run FAILED even if a checkpoint write
        fails too); their own errors are reported, and the run's original error is the one re-raised."""
        for callback, method in self.by_event["on_exception"]:
            try:
                method(state)
            except Exception as error:  # noqa: BLE001 - reported, never allowed to replace the real error
                print(f"glassloop: warning: callback {type(callback).__name__} failed in on_exception: "
                      f"{type(error).__name__}: {error}", file=sys.stderr)



STEP_PATHS = {
    "autograd": "steps 2-4 run as written: model(inputs), loss_fn(...), loss.backward()",
    "fused": ("steps 2-4 run by hand with the same kernels (an nn.Sequential MLP with MSE/cross-entropy and nothing "
              "that needs autograd; glassloop/core/fused.py); fit(fused_step=False) runs them as written"),
}


def show_loop(callbacks: Iterable[Any] = (), step_path: str | None = None) -> str:
    """The loop glassloop runs, with each attached callback printed at the events it handles, and which path
    steps 2-4 take (`history.step_path`; both paths when it is not given)."""
    attached = CallbackList(callbacks)
    lines = []
    for line in LOOP_TEXT.splitlines():
        lines.append(line)
        event = line.strip().split()[0] if line.strip() else ""
        if event in EVENTS:
            indent = line[: len(line) - len(line.lstrip())]
            for callback, _ in attached.by_event[event]:
                lines.append(f"{indent}  -> {type(callback).__name__} [{BANDS[band_of(callback)]}]")
    paths = [step_path] if step_path in STEP_PATHS else list(STEP_PATHS)
    lines += [""] + [f"# {path}: {STEP_PATHS[path]}" for path in paths]
    text = "\n".join(lines)
    print(text)
    return text
