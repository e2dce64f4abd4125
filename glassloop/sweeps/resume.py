"""Exact resume of a whole sweep: `run_dir/latest.pt`, written atomically after every epoch.

It holds everything the next epoch depends on: the stacked weights and best weights, the optimizer's moments and
step count, the schedules, every configuration's data-order generator, the global RNG states, the per-config
records and patience counters, and the state of stateful callbacks. A sweep killed at any instant (kill -9
included) and resumed with `resume=True` ends bitwise identical to the uninterrupted one (CPU, same threads);
`tests/sweeps/test_resume.py` kills a real process to check it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from glassloop.callbacks.checkpoint import callback_keys
from glassloop.core.checkpoint import FileWriter, envelope, load_checkpoint, pack, rng_states, set_rng_states
from glassloop.errors import CheckpointError, ConfigError
from glassloop.sweeps.trainer import Trainer

KIND = "sweep"


class SweepCheckpoint:
    """`latest.pt` of a sweep in `run_dir`; with `resume`, an existing one is continued."""

    def __init__(self, run_dir: Any, resume: bool) -> None:
        if not isinstance(run_dir, (str, Path)) or not str(run_dir).strip():
            raise ConfigError(f"run_dir={run_dir!r}; expected a directory path such as 'runs/sweep-1'")
        if not isinstance(resume, bool):
            raise ConfigError(f"resume={resume!r} must be True or False")
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.writer: FileWriter | None = None
        self.fingerprint: dict[str, Any] = {}

    @property
    def latest_path(self) -> Path:
        return self.run_dir / "latest.pt"

    def check_directory(self) -> None:
        """Before anything trains: a usable directory, and no sweep in it that resume=False would overwrite."""
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise CheckpointError(f"run_dir {self.run_dir} is a file; pass a directory path")
        if self.latest_path.exists() and not self.resume:
            raise CheckpointError(f"{self.latest_path} already holds a sweep; pass resume=True to continue it, or "
                                  "choose a new run_dir")

    def open(self, trainer: Trainer, fingerprint: dict[str, Any]) -> bool:
        """Restore a saved sweep into `trainer` if there is one; True when that sweep had already finished."""
        self.fingerprint = json.loads(json.dumps(fingerprint))  # lists, not tuples: as it reads back
        finished = False
        if self.resume and self.latest_path.exists():
            payload = load_checkpoint(self.latest_path, kind=KIND)
            self.check_same_sweep(json.loads(payload["fingerprint"]))
            restore(trainer, payload)
            finished = bool(payload["finished"])
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob(".*.tmp-*"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        self.writer = FileWriter()
        return finished

    def check_same_sweep(self, saved: dict[str, Any]) -> None:
        for key, value in self.fingerprint.items():
            if saved.get(key) != value:
                shown = "the configurations" if key == "configs" else f"{key}={saved.get(key)!r}"
                mine = "" if key == "configs" else f" but this sweep has {key}={value!r}"
                raise CheckpointError(f"{self.latest_path} belongs to a sweep with {shown} differing{mine}; "
                                      "resume with the same settings, or use a new run_dir")

    def save(self, trainer: Trainer, finished: bool) -> None:
        assert self.writer is not None
        self.writer.submit(envelope(KIND, fingerprint=json.dumps(self.fingerprint), finished=finished,
                                    **pack(state_of(trainer))), self.latest_path)

    def close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.flush()
            finally:
                self.writer.close()
                self.writer = None


def state_of(trainer: Trainer) -> dict[str, Any]:
    """Everything the next epoch depends on (tensors are packed into one buffer per dtype by the caller)."""
    return {
        "epoch": trainer.epoch, "step_count": trainer.step_count,
        "weights": trainer.stack.flat.detach(), "best": trainer.best,
        "optimizer": trainer.optimizer.state_dict(),
        "schedules": trainer.schedules.state_dict() if trainer.schedules is not None else None,
        "generators": [generator.get_state() for generator in trainer.generators],
        "rng": rng_states(),
        "active": list(trainer.active), "stopped_epoch": list(trainer.stopped_epoch),
        "best_value": list(trainer.best_value), "wait": list(trainer.wait),
        "histories": json.dumps([history.state_dict() for history in trainer.histories]),
        "callbacks": {key: callback.state_dict() for key, callback in callback_keys(trainer.callbacks).items()},
    }


def restore(trainer: Trainer, state: dict[str, Any]) -> None:
    with torch.no_grad():
        trainer.stack.flat.copy_(state["weights"])
        trainer.best.copy_(state["best"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.schedules is not None:
        trainer.schedules.load_state_dict(state["schedules"])
        trainer.follow_schedules()
    for generator, saved in zip(trainer.generators, state["generators"]):
        generator.set_state(saved)
    set_rng_states(state["rng"])
    trainer.epoch, trainer.step_count = state["epoch"], state["step_count"]
    trainer.active = list(state["active"])
    trainer.running.copy_(torch.tensor(trainer.active))
    trainer.stopped_epoch = list(state["stopped_epoch"])
    trainer.best_value, trainer.wait = list(state["best_value"]), list(state["wait"])
    for history, saved in zip(trainer.histories, json.loads(state["histories"])):
        history.load_state_dict(saved)
    trainer.optimizer.set_active(trainer.active)
    stateful = callback_keys(trainer.callbacks)
    for key, saved in state["callbacks"].items():
        if key in stateful:
            stateful[key].load_state_dict(saved)
