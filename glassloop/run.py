"""Everything around the heartbeat: validate `fit`'s arguments before the first batch, build the pieces
(optimizer, scheduler, loss, batches, callbacks) and hold the per-run helpers the loop calls.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch

from glassloop.core import distributed
from glassloop.core.batches import TensorBatcher, make_source
from glassloop.core.building import is_plateau, make_loss, make_optimizer, make_scheduler, steps_per_batch
from glassloop.core.devices import resolve_device, seed_everything
from glassloop.core.evaluation import evaluate_source
from glassloop.core.events import EVENTS, CallbackList
from glassloop.core.guards import (
    LossFunctionGuard,
    ShapeGuard,
    check_like_train,
    check_model,
    check_optimizer_owns_model,
    check_pairs,
)
from glassloop.core.metrics import make_metrics
from glassloop.core.options import check_options
from glassloop.core.rules import choose_threads, nonfinite_reason
from glassloop.core.state import History, LoopState
from glassloop.core.torch_private import fast_step
from glassloop.errors import ConfigError


class Run:
    """One call of `fit`: the built pieces plus the small helpers the heartbeat calls."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        model = options["model"]
        check_model(model)
        check_options(options)
        self.device = resolve_device(options["device"])
        self.created_group = distributed.join(self.device)  # under torchrun: DDP (gloo on CPU, NCCL on CUDA)
        self.device = distributed.device_for_rank(self.device)
        self.rank, self.world_size = distributed.rank_and_world()
        self.epochs = options["epochs"]
        self.compute_loss = options["compute_loss"]
        if self.compute_loss is not None:
            if not callable(self.compute_loss):
                raise ConfigError("compute_loss must be a function fn(model, batch) -> scalar loss tensor")
            self.compute_loss = LossFunctionGuard(self.compute_loss)
        seed = options["seed"] if self.world_size == 1 else distributed.same_seed(options["seed"])
        if seed is not None:
            seed_everything(seed)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        if not self.parameters:
            raise ConfigError("the model has no trainable parameters (all requires_grad=False); nothing to train")
        self.module = model.to(self.device)  # callbacks and checkpoints see the plain module
        self.model = distributed.wrap(self.module, self.device) if self.world_size > 1 else self.module
        self.loss_fn = ShapeGuard(make_loss(options["loss"]))
        self.val_loss_fn = ShapeGuard(self.loss_fn.loss_fn)
        self.metrics = make_metrics(options["metrics"])
        self.train = make_source(options["train"], options["batch_size"], options["shuffle"], seed, "train",
                                 self.rank, self.world_size).to(self.device)
        self.val = options["val"]
        if self.val is not None:  # validate now, not after a whole epoch of training
            val_source = make_source(self.val, options["batch_size"], False, None, "val")
            check_like_train(self.train, val_source)
        if self.compute_loss is None:
            check_pairs(self.train, self.module)
        self.optimizer = make_optimizer(options["optimizer"], self.parameters, options["lr"], options["momentum"],
                                        options["weight_decay"])
        check_optimizer_owns_model(self.optimizer, self.parameters)
        self.optimizer_step = fast_step(self.optimizer, built_here=options["optimizer"] is not self.optimizer)
        # What the optimizer updates is what gets cleared, measured and clipped (it may hold extra tensors).
        self.parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.scheduler = make_scheduler(options["scheduler"], self.optimizer, self.epochs, len(self.train))
        self.per_batch_schedule = self.scheduler is not None and (
            options["scheduler_step"] == "batch" or (options["scheduler_step"] == "auto"
                                                      and steps_per_batch(self.scheduler, options["scheduler"])))
        self.clip_grad_norm = options["clip_grad_norm"]
        self.callbacks = CallbackList(self._callbacks(options))
        self.batch_hooks = self.callbacks.has("on_batch_start") or self.callbacks.has("on_batch_end")
        self.after_backward_hooks = self.callbacks.has("on_after_backward")
        self.interrupted: int | None = None
        monitor, mode = self.history_monitor()
        self.state = LoopState(history=History(monitor=monitor, mode=mode), model=self.module, optimizer=self.optimizer, scheduler=self.scheduler,
                               loss_fn=self.loss_fn.loss_fn, epochs=self.epochs, batcher=self.train,
                               device=self.device, config=self.config(), callbacks=self.callbacks.callbacks,
                               record_keys=["epoch", "train_loss", "val_loss", "lr", "grad_norm", "seconds",
                                            *(f"val_{name}" for name in self.metrics if self.val is not None)])
        if options["checks"]:
            self._runtime_checks()

    def _callbacks(self, options: dict[str, Any]) -> list[Any]:
        callbacks = options["callbacks"]
        if callbacks is None:
            callbacks = []
        elif not isinstance(callbacks, (list, tuple)):
            callbacks = [callbacks]
        callbacks = list(callbacks)
        from glassloop.callbacks.console import Console

        for callback in callbacks:
            if not any(callable(getattr(callback, event, None)) for event in EVENTS):
                raise ConfigError(f"callback {callback!r} has none of the event methods ({', '.join(EVENTS)}); "
                                  "pass objects like gl.EarlyStopping(...) or your own class with on_epoch_end etc.")
        if options["verbose"] and not any(isinstance(c, Console) for c in callbacks):
            callbacks.append(Console(progress=options["progress"]))
        return distributed.main_process_only(callbacks)

    def history_monitor(self) -> tuple[str, str]:
        """What history.best_epoch and best.pt follow: early stopping's monitor when attached, else val_loss
        (the training loss without validation data)."""
        from glassloop.callbacks.early_stopping import EarlyStopping

        stopper = next((c for c in self.callbacks.callbacks if isinstance(c, EarlyStopping)), None)
        if stopper is not None:
            return stopper.monitor, stopper.mode
        return ("val_loss" if self.val is not None else "train_loss"), "min"

    def config(self) -> dict[str, Any]:
        """JSON-safe description of this run (checkpoints and MLflow params use it)."""
        o = self.options
        scheduler = o["scheduler"]
        return {
            "model_class": type(self.module).__name__,
            "parameters": sum(p.numel() for p in self.parameters),
            "loss": o["loss"] if isinstance(o["loss"], str) else type(o["loss"]).__name__,
            "optimizer": type(self.optimizer).__name__,
            "optimizer_defaults": {k: v for k, v in self.optimizer.defaults.items()
                                   if isinstance(v, (int, float, str, bool, type(None)))},
            "lr": self.optimizer.param_groups[0]["lr"],
            "epochs": self.epochs, "batch_size": o["batch_size"], "shuffle": o["shuffle"],
            "scheduler": scheduler if isinstance(scheduler, (str, type(None))) else type(scheduler).__name__,
            "clip_grad_norm": o["clip_grad_norm"], "seed": o["seed"], "device": str(self.device),
            "world_size": self.world_size,
            "train_size": self.train.n if isinstance(self.train, TensorBatcher) else len(self.train),
            "compute_loss": getattr(self.compute_loss, "__name__", None),
        }

    # -- helpers the heartbeat calls -------------------------------------------------------------------------

    def announce(self, event: str, **fields: Any) -> None:
        """Set what a per-batch event shows (batch, batch_index, loss, grad_norm) and call its callbacks."""
        for name, value in fields.items():
            setattr(self.state, name, value)
        self.callbacks(event, self.state)

    def resume_partial_epoch(self) -> tuple[list[float], list[float], float]:
        """Start an epoch: empty accumulators, or those of an epoch interrupted mid-way and now resumed."""
        partial, self.state.partial_epoch = self.state.partial_epoch, None
        if partial is None:
            self.epoch_lr = self.optimizer.param_groups[0]["lr"]  # the LR this epoch trains with
            return [], [], time.perf_counter()
        self.epoch_lr = partial["lr"]  # a per-batch schedule has moved on since the epoch began
        return list(partial["losses"]), list(partial["norms"]), time.perf_counter() - partial["seconds"]

    def save_partial_epoch(self, losses: list[float], norms: list[float], started: float) -> None:
        # Only the in-memory batcher knows its position inside an epoch; other sources redo the epoch.
        if isinstance(self.train, TensorBatcher):
            self.state.partial_epoch = {"losses": losses, "norms": norms, "lr": self.epoch_lr,
                                                 "seconds": time.perf_counter() - started}

    def epoch_record(self, losses: list[float], norms: list[float]) -> dict[str, Any]:
        sums = [math.fsum(losses), len(losses), math.fsum(norms), len(norms)]
        if self.world_size > 1:  # every rank saw its shard: the epoch means are over all of them
            sums = distributed.all_reduce_sums(sums, self.device)
        return {
            "epoch": self.state.epoch,
            "train_loss": sums[0] / sums[1] if sums[1] else float("nan"),
            "val_loss": None,
            "lr": self.epoch_lr,
            "grad_norm": sums[2] / sums[3] if sums[3] else float("nan"),
        }

    def validate(self) -> dict[str, Any]:
        if self.val is None:
            return {}
        result = evaluate_source(self.module, self.val, self.val_loss_fn, self.metrics, self.options["batch_size"],
                                 self.device, self.compute_loss)
        return {("val_loss" if key == "loss" else f"val_{key}"): value for key, value in result.items()}

    def step_epoch_schedule(self, record: dict[str, Any]) -> None:
        if self.scheduler is None or self.per_batch_schedule:
            return  # (a stopped run still steps: a resume after a signal here must see the same schedule)
        if is_plateau(self.scheduler):
            monitored = record["val_loss"] if record["val_loss"] is not None else record["train_loss"]
            self.scheduler.step(monitored)
        else:
            self.scheduler.step()

    def nonfinite_reason(self, loss_value: float, norm_value: float, batch_index: int) -> str:
        self.state.nonfinite = True
        return nonfinite_reason(loss_value, norm_value, self.state.epoch, batch_index, self.state.step)

    def finish(self) -> None:
        history = self.state.history
        history.signal = self.interrupted
        if self.state.stop_reason is not None or history.stop_reason is None:
            history.stop_reason = self.state.final_stop_reason()

    # -- process-level guards ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def guards(self) -> Iterator[None]:
        threads = self.options["threads"]
        previous = torch.get_num_threads()
        wanted = self._threads(threads)
        if wanted and wanted != previous:
            torch.set_num_threads(wanted)
        handlers = self._install_signal_handlers()
        try:
            yield
        finally:
            distributed.leave(self.created_group)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            if wanted and wanted != previous:
                torch.set_num_threads(previous)

    def _threads(self, threads: Any) -> int | None:
        batch = self.options["batch_size"] or getattr(self.train, "n", 1)
        return choose_threads(threads, self.device, batch, sum(p.numel() for p in self.parameters))

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}

        def handle(signum: int, frame: Any) -> None:
            if self.interrupted is not None:  # second signal: abort now (files are written atomically)
                signal.signal(signum, previous.get(signum, signal.SIG_DFL))
                signal.raise_signal(signum)  # the previous behaviour: KeyboardInterrupt, or SIGTERM's exit 143
                return
            # Order matters: whoever sees should_stop set must also see the signal (Checkpoint reads them so).
            self.interrupted = signum
            self.state.interrupted_by = signum
            name = signal.Signals(signum).name
            self.state.stop(f"interrupted by {name} at epoch {self.state.epoch + 1}, step {self.state.step}; "
                            "resume with gl.Checkpoint(run_dir, resume=True) or `glassloop resume DIR`")

        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[signum] = signal.signal(signum, handle)
            except (ValueError, OSError):
                pass
        return previous

    def _runtime_checks(self) -> None:
        from glassloop.doctor.runtime import check

        if not isinstance(self.train, TensorBatcher) or self.compute_loss is not None:
            return
        inputs, targets = (t[: self.train.batch_size] for t in self.train.tensors)
        was_training = self.module.training
        self.module.train()  # fit trains in train mode whatever mode the model came in: probe it that way
        try:
            findings = check(self.module, self.loss_fn.loss_fn, self.optimizer, (inputs, targets))
        finally:
            self.module.train(was_training)
        self.state.checks = findings
        if self.options["verbose"] and distributed.is_main_process():
            for finding in findings:
                print(finding.render())
