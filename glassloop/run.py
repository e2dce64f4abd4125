"""The pieces of one `fit` call, built once from its `FitOptions` before the first batch.

`Run` holds what the heartbeat uses (device, model, loss, batches, optimizer and its step, scheduler,
callbacks, precision, accumulation, state); `EpochBook` (glassloop/epochs.py) keeps the epoch's accounts;
`process_guards` (glassloop/process.py) sets threads and signal handlers around the loop.
"""

from __future__ import annotations

import sys
from typing import Any

from torch import nn

from glassloop.core import distributed
from glassloop.core.accumulation import Accumulation
from glassloop.core.batches import TensorBatcher, calls_structured, make_source
from glassloop.core.building import (
    ambiguous_schedule_note,
    make_loss,
    make_optimizer,
    make_scheduler,
    steps_per_batch,
)
from glassloop.core.devices import resolve_device, seed_everything
from glassloop.core.events import EVENTS, CallbackList
from glassloop.core.flat import FlatOptimizer
from glassloop.core.fused import FusedStep
from glassloop.core.fused import supports as fused_supports
from glassloop.core.guards import (
    LossFunctionGuard,
    ShapeGuard,
    check_like_train,
    check_model,
    check_optimizer_owns_model,
    check_pairs,
    explain_first_step,
    input_leaves,
)
from glassloop.core.metrics import make_metrics
from glassloop.core.options import FitOptions
from glassloop.core.precision import Precision
from glassloop.core.state import History, LoopState
from glassloop.core.structured import StructuredCall
from glassloop.core.torch_private import fast_step
from glassloop.core.workloads import count_parameters
from glassloop.epochs import EpochBook
from glassloop.errors import ConfigError, GlassloopError


class Run:
    """One call of `fit`: the built pieces, each built once from the options."""

    def __init__(self, model: nn.Module, train: Any, val: Any, options: FitOptions) -> None:
        check_model(model)
        self.options = options
        self.epochs = options.epochs
        self.device = resolve_device(options.device)
        self.created_group = distributed.join(self.device)  # under torchrun: DDP (gloo on CPU, NCCL on CUDA)
        self.device = distributed.device_for_rank(self.device)
        self.rank, self.world_size = distributed.rank_and_world()
        seed = options.seed if self.world_size == 1 else distributed.same_seed(options.seed)
        if seed is not None:
            seed_everything(seed)
        self.compute_loss = LossFunctionGuard(options.compute_loss) if options.compute_loss is not None else None
        self.build_model(model)
        self.build_data(train, val, seed)
        self.build_optimizer()
        self.callbacks = CallbackList(self.build_callbacks())
        self.batch_hooks = self.callbacks.has("on_batch_start") or self.callbacks.has("on_batch_end")
        self.steps_watched = self.callbacks.watch_steps()  # a user's per-batch callback: the lesson's step
        self.after_backward_hooks = self.callbacks.has("on_after_backward")
        monitor, mode = self.history_monitor()
        self.state = LoopState(history=History(monitor=monitor, mode=mode), model=self.module,
                               optimizer=self.optimizer, scheduler=self.scheduler, loss_fn=self.loss_fn.loss_fn,
                               epochs=self.epochs, batcher=self.train, device=self.device, config=self.config(),
                               callbacks=self.callbacks.callbacks,
                               record_keys=["epoch", "train_loss", "val_loss", "lr", "grad_norm", "seconds",
                                            *(f"val_{name}" for name in self.metrics if self.val is not None)])
        self.fused = self.build_fused_step()
        self.state.history.step_path = "fused" if self.fused is not None else "autograd"
        self.gradients = self.build_gradients()
        self.book = EpochBook(self)
        if options.checks:
            self.runtime_checks()

    def build_model(self, model: nn.Module) -> None:
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError("the model has no trainable parameters (all requires_grad=False); nothing to train")
        self.module = model.to(self.device)  # callbacks and checkpoints see the plain module
        self.model = distributed.wrap(self.module, self.device) if self.world_size > 1 else self.module
        self.loss_fn = ShapeGuard(make_loss(self.options.loss))
        self.val_loss_fn = ShapeGuard(self.loss_fn.loss_fn)
        self.metrics = make_metrics(self.options.metrics)
        self.precision = Precision(self.options.precision, self.device)
        self.micro = Accumulation(self.options.accumulate, self.precision, self.model, self.world_size)

    def build_data(self, train: Any, val: Any, seed: int | None) -> None:
        o = self.options
        self.train = make_source(train, o.batch_size, o.shuffle, seed, "train", self.rank,
                                 self.world_size).to(self.device)
        self.val = val
        if val is not None:  # validate now, not after a whole epoch of training
            check_like_train(self.train, make_source(val, o.batch_size, False, None, "val"))
        if self.compute_loss is None:
            check_pairs(self.train, self.module, self.loss_fn)  # + every in-memory target row against the loss
            if calls_structured(self.train):  # dict -> model(**inputs), tuple/list -> model(*inputs)
                self.model = StructuredCall(self.model)  # outside the module: checkpoints save the same keys

    def build_optimizer(self) -> None:
        o = self.options
        trainable = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(o.optimizer, trainable, o.lr, o.momentum, o.weight_decay)
        check_optimizer_owns_model(self.optimizer, trainable)
        # What the optimizer updates is what gets cleared, measured and clipped (it may hold extra tensors).
        self.parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        steps = -(-len(self.train) // o.accumulate)  # optimizer steps per epoch
        self.scheduler = make_scheduler(o.scheduler, self.optimizer, self.epochs, steps)
        # After the scheduler: it wraps optimizer.step to learn that the optimizer stepped before it.
        fast = fast_step(self.optimizer, built_here=o.optimizer is not self.optimizer)
        scaler = self.precision.scaler
        self.optimizer_step = fast if scaler is None else lambda: self.precision.step(self.optimizer, fast)
        self.per_batch_schedule = self.scheduler is not None and (
            o.scheduler_step == "batch" or (o.scheduler_step == "auto" and steps_per_batch(self.scheduler, o.scheduler)))
        self.clip_grad_norm = o.clip_grad_norm
        note = ambiguous_schedule_note(self.scheduler) if o.scheduler_step == "auto" else None
        if note and o.verbose and distributed.is_main_process():
            print(note, file=sys.stderr)

    def build_fused_step(self) -> FusedStep | None:
        """The hand-written step (same numbers) when nothing needs autograd; else None: `loss.backward()`."""
        o = self.options
        eligible = (o.fused_step and self.micro.plain and self.compute_loss is None and not o.checks
                    and self.world_size == 1 and not self.steps_watched and not self.after_backward_hooks
                    and isinstance(self.train, TensorBatcher) and self.train.layout is None
                    and self.train.tensors[0].dim() == 2  # rows x features: nn.Linear on more dims is a matmul
                    and not (isinstance(self.loss_fn.loss_fn, nn.CrossEntropyLoss)
                             and self.train.tensors[-1].dtype.is_floating_point)  # probabilities: autograd's path
                    and fused_supports(self.module, self.loss_fn.loss_fn))
        return FusedStep(self.module, self.loss_fn.loss_fn, self.loss_fn) if eligible else None

    def build_gradients(self) -> FlatOptimizer:
        """Clear, norm/clip and step: over one flat buffer (glassloop/core/flat.py) for an optimizer built by name
        when no per-batch callback can see or replace a tensor mid-epoch; else torch's per-tensor path."""
        o = self.options
        enabled = (o.fused_step and isinstance(o.optimizer, str) and self.world_size == 1 and self.micro.plain
                   and self.precision.scaler is None and not self.steps_watched and not self.after_backward_hooks)
        gradients = FlatOptimizer(self.optimizer, self.parameters, self.optimizer_step, enabled,
                                  torch_clip=not isinstance(o.optimizer, str))
        gradients.overwritten = self.fused is not None  # the fused step writes every gradient: no clearing
        if enabled:
            self.optimizer_step = gradients.step
        return gradients

    def build_callbacks(self) -> list[Any]:
        from glassloop.callbacks.console import Console

        callbacks = self.options.callbacks
        callbacks = [] if callbacks is None else list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
        for callback in callbacks:
            if not any(callable(getattr(callback, event, None)) for event in EVENTS):
                raise ConfigError(f"callback {callback!r} has none of the event methods ({', '.join(EVENTS)}); "
                                  "pass objects like gl.EarlyStopping(...) or your own class with on_epoch_end etc.")
        if self.options.verbose and not any(isinstance(c, Console) for c in callbacks):
            callbacks.append(Console(progress=self.options.progress))
        if self.precision.scaler is not None:  # its state_dict (the fp16 scale) travels in latest.pt
            callbacks.append(self.precision)
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
        return {
            "model_class": type(self.module).__name__,
            "parameters": count_parameters(self.module),
            "loss": o.loss if isinstance(o.loss, str) else type(o.loss).__name__,
            "optimizer": type(self.optimizer).__name__,
            "optimizer_defaults": {k: v for k, v in self.optimizer.defaults.items()
                                   if isinstance(v, (int, float, str, bool, type(None)))},
            "lr": self.optimizer.param_groups[0]["lr"],
            "epochs": self.epochs, "batch_size": o.batch_size, "shuffle": o.shuffle,
            "scheduler": o.scheduler if isinstance(o.scheduler, (str, type(None))) else type(o.scheduler).__name__,
            "clip_grad_norm": o.clip_grad_norm, "seed": o.seed, "device": str(self.device),
            "world_size": self.world_size, "accumulate": o.accumulate, "precision": o.precision,
            "check_finite_every": o.check_finite_every,
            "train_size": self.train.n if isinstance(self.train, TensorBatcher) else len(self.train),
            "compute_loss": getattr(self.compute_loss, "__name__", None),
        }

    def announce(self, event: str, **fields: Any) -> None:
        """Set what a per-batch event shows (batch, batch_index, loss, grad_norm) and call its callbacks."""
        for name, value in fields.items():
            setattr(self.state, name, value)
        self.callbacks(event, self.state)

    def explain(self, error: BaseException) -> GlassloopError | None:
        """Before the first optimizer step, a torch error about the inputs (features, dtype, embedding ids, a
        forward() that refuses structured inputs) becomes one GlassloopError line; None leaves it as it is."""
        if self.state.step or self.compute_loss is not None:
            return None
        return explain_first_step(error, input_leaves(self.train))

    def runtime_checks(self) -> None:
        from glassloop.doctor.runtime import check

        if not isinstance(self.train, TensorBatcher) or self.train.layout is not None or self.compute_loss is not None:
            return
        inputs, targets = (t[: self.train.batch_size] for t in self.train.tensors)
        was_training = self.module.training
        self.module.train()  # fit trains in train mode whatever mode the model came in: probe it that way
        try:
            findings = check(self.module, self.loss_fn.loss_fn, self.optimizer, (inputs, targets))
        finally:
            self.module.train(was_training)
        self.state.checks = findings
        if self.options.verbose and distributed.is_main_process():
            for finding in findings:
                print(finding.render())


