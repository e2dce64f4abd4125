"""Everything around the heartbeat: validate `fit`'s arguments before the first batch, build the pieces
(optimizer, scheduler, loss, batches, callbacks) and hold the per-run helpers the loop calls.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from glassloop import distributed
from glassloop.batches import TensorBatcher, as_tensor, make_source
from glassloop.errors import ConfigError
from glassloop.events import EVENTS, CallbackList
from glassloop.schedules import (
    fast_step,
    is_plateau,
    make_loss,
    make_optimizer,
    make_scheduler,
    steps_per_batch,
)
from glassloop.state import History, LoopState

# Losses that compare outputs and targets element by element: any shape mismatch would silently broadcast.
ELEMENTWISE_LOSSES = (nn.MSELoss, nn.L1Loss, nn.HuberLoss, nn.SmoothL1Loss, nn.BCELoss, nn.BCEWithLogitsLoss)
ELEMENTWISE_FUNCTIONS = {"mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
                         "binary_cross_entropy_with_logits"}


def resolve_device(device: Any) -> torch.device:
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'") from None
    if chosen.type == "cuda" and (not torch.cuda.is_available()
                                  or (chosen.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA device(s) "
                          f"(torch {torch.__version__}); use device='auto' or 'cpu'")
    if chosen.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device={device!r} but MPS is not available here; use device='auto' or 'cpu'")
    return chosen


def move_to(batch: Any, device: torch.device) -> Any:
    """Tensors inside tuples, lists and dicts go to `device` (a no-op when they are already there)."""
    if isinstance(batch, torch.Tensor):
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(move_to(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: move_to(value, device) for key, value in batch.items()}
    return batch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (lesson 003: set all three)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def grad_norm(parameters: list[torch.Tensor], max_norm: float | None = None) -> torch.Tensor:
    """Global L2 norm of all gradients, measured before clipping; clips in place when `max_norm` is set."""
    if max_norm is not None:
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)  # torch's own; returns the pre-clip norm
    grads = [p.grad.reshape(-1) for p in parameters if p.grad is not None]
    return torch.linalg.vector_norm(torch.cat(grads)) if grads else torch.zeros(())  # 2 ops, ~3x get_total_norm


def clear_gradients(parameters: list[torch.Tensor]) -> None:
    """`optimizer.zero_grad(set_to_none=True)` without its per-call profiler and hook overhead (~25 us a step)."""
    for parameter in parameters:
        parameter.grad = None


class ShapeGuard:
    """Checks the first (outputs, targets) pair a loss sees and the loss it returns; then it is a plain call.

    Training and validation each get their own guard: validation data can be malformed on its own.
    """

    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn
        self.checked = False

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.checked:
            return self.loss_fn(outputs, targets)
        check_loss_inputs(self.loss_fn, outputs, targets)
        loss = self.loss_fn(outputs, targets)
        check_scalar_loss(loss, type(self.loss_fn).__name__)
        self.checked = True
        return loss


class LossFunctionGuard:
    """`compute_loss(model, batch)` checked once: it must return a scalar tensor."""

    def __init__(self, compute_loss: Any) -> None:
        self.compute_loss = compute_loss
        self.checked = False
        self.__name__ = getattr(compute_loss, "__name__", type(compute_loss).__name__)

    def __call__(self, model: nn.Module, batch: Any) -> torch.Tensor:
        loss = self.compute_loss(model, batch)
        if not self.checked:
            check_scalar_loss(loss, f"compute_loss {self.__name__}")
            self.checked = True
        return loss


def check_scalar_loss(loss: Any, what: str) -> None:
    if not isinstance(loss, torch.Tensor):
        raise ConfigError(f"{what} returned {type(loss).__name__} {loss!r}, not a tensor; return the loss tensor "
                          "itself (not loss.item()) so backward() can run")
    if loss.dim() != 0:
        raise ConfigError(f"{what} returned a loss of shape {tuple(loss.shape)}; backward() needs one scalar: use "
                          "reduction='mean' (the default) or call .mean() on the per-sample losses")


def check_loss_inputs(loss_fn: Any, outputs: Any, targets: Any) -> None:
    """Raise ConfigError where the loss would broadcast or misread its inputs instead of failing."""
    if not (isinstance(outputs, torch.Tensor) and isinstance(targets, torch.Tensor)):
        return
    name = getattr(loss_fn, "__name__", "")
    if isinstance(loss_fn, ELEMENTWISE_LOSSES) or name in ELEMENTWISE_FUNCTIONS:
        if outputs.shape != targets.shape:
            fix = ("reshape the targets with targets.unsqueeze(1) (or targets.view(-1, 1))"
                   if outputs.dim() == targets.dim() + 1 and outputs.shape[-1] == 1 else
                   "squeeze the model output with outputs.squeeze(1)"
                   if targets.dim() == outputs.dim() + 1 and targets.shape[-1] == 1 else
                   "make the model output and the targets the same shape")
            raise ConfigError(
                f"loss {type(loss_fn).__name__} got outputs of shape {tuple(outputs.shape)} and targets of shape "
                f"{tuple(targets.shape)}; they would broadcast to a wrong loss. Expected equal shapes: {fix}")
        if not targets.dtype.is_floating_point:
            raise ConfigError(
                f"loss {type(loss_fn).__name__} got integer targets ({targets.dtype}); regression losses need float "
                "targets: use targets.float(), or loss='cross_entropy' for class labels")
    if isinstance(loss_fn, nn.CrossEntropyLoss) and outputs.dim() >= 2 and outputs.shape[1] == 1:
        raise ConfigError(
            f"CrossEntropyLoss got outputs of shape {tuple(outputs.shape)}: one class, so the loss is always 0 and "
            "nothing trains. Give the model one output per class, or use loss='bce_with_logits' for two classes")
    if isinstance(loss_fn, nn.CrossEntropyLoss) and not targets.dtype.is_floating_point:
        if outputs.dim() < 2 or targets.shape != outputs.shape[:1] + outputs.shape[2:]:
            raise ConfigError(
                f"CrossEntropyLoss got outputs {tuple(outputs.shape)} and class-index targets {tuple(targets.shape)};"
                " expected outputs (N, C) logits and targets (N,) class indices (use targets.view(-1).long())")


METRICS = {
    "mae": lambda o, t: (o - t).abs().mean(),
    "mse": lambda o, t: ((o - t) ** 2).mean(),
    "rmse": lambda o, t: ((o - t) ** 2).mean().sqrt(),
    "accuracy": lambda o, t: (o.argmax(1) == t).float().mean() if o.dim() > 1 and o.shape[1] > 1
    else ((o > 0).long().view_as(t) == t.long()).float().mean(),
}


def make_metrics(metrics: Any) -> dict[str, Any]:
    if metrics is None:
        return {}
    if isinstance(metrics, (list, tuple)):
        metrics = {name: name for name in metrics}
    if not isinstance(metrics, dict):
        raise ConfigError(f"metrics={metrics!r} should be a dict name -> fn(outputs, targets), or a list of "
                          f"names from {', '.join(METRICS)}")
    built = {}
    for name, fn in metrics.items():
        if isinstance(fn, str):
            if fn not in METRICS:
                raise ConfigError(f"unknown metric {fn!r}; expected one of {', '.join(METRICS)} or a callable")
            fn = METRICS[fn]
        if not callable(fn):
            raise ConfigError(f"metric {name!r} is {fn!r}, not callable; pass fn(outputs, targets) -> number")
        built[name] = fn
    return built


def check_options(options: dict[str, Any]) -> None:
    """The scalar options of `fit`, checked before anything is built."""
    _check_number("epochs", options["epochs"], 1, integer=True)
    _check_number("clip_grad_norm", options["clip_grad_norm"], 0, allow_none=True)
    if options["clip_grad_norm"] == 0:
        raise ConfigError("clip_grad_norm=0 would zero every gradient; use a positive max norm such as 1.0, "
                          "or None for no clipping")
    seed = options["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise ConfigError(f"seed={seed!r} must be an integer from 0 to 2**63 - 1, or None")
    if options["scheduler_step"] not in ("auto", "epoch", "batch"):
        raise ConfigError(f"scheduler_step={options['scheduler_step']!r}; expected 'auto', 'epoch' or 'batch'")
    if not isinstance(options["shuffle"], bool):
        raise ConfigError(f"shuffle={options['shuffle']!r} must be True or False")
    if options["progress"] not in ("auto", True, False, None):
        raise ConfigError(f"progress={options['progress']!r}; expected 'auto', True or False")


def check_pairs(source: Any, model: nn.Module) -> None:
    """Float inputs must match the model's float dtype (float64 data into a float32 model fails mid-step)."""
    if not isinstance(source, TensorBatcher):
        return
    parameter = next(model.parameters(), None)
    inputs = source.tensors[0]
    if parameter is not None and inputs.dtype.is_floating_point and inputs.dtype != parameter.dtype:
        raise ConfigError(f"train inputs are {inputs.dtype} but the model's parameters are {parameter.dtype}; "
                          f"convert one of them: inputs.to({parameter.dtype}) or model.to({inputs.dtype})")


def check_like_train(train: Any, val: Any) -> None:
    """Validation rows must look like training rows (else the error comes after a whole epoch of training)."""
    if not (isinstance(train, TensorBatcher) and isinstance(val, TensorBatcher)):
        return
    for name, a, b in (("inputs", train.tensors[0], val.tensors[0]), ("targets", train.tensors[1], val.tensors[1])):
        if a.shape[1:] != b.shape[1:]:
            raise ConfigError(f"val {name} have rows of shape {tuple(b.shape[1:])} but train {name} have "
                              f"{tuple(a.shape[1:])}; validation data must have the same columns as training data")


def check_optimizer_owns_model(optimizer: torch.optim.Optimizer, parameters: list[torch.Tensor]) -> None:
    owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not owned & {id(p) for p in parameters}:
        raise ConfigError("the optimizer holds none of this model's parameters (was it built for another model, or "
                          "before the model was replaced?); build it with torch.optim.X(model.parameters(), ...)")


def _check_number(name: str, value: Any, minimum: float, allow_none: bool = False, integer: bool = False) -> None:
    if value is None and allow_none:
        return
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or value < minimum:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name}={value!r} must be {kind} >= {minimum}")


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
        partial = self.state.extra.pop("partial_epoch", None)
        if partial is None:
            self.epoch_lr = self.optimizer.param_groups[0]["lr"]  # the LR this epoch trains with
            return [], [], time.perf_counter()
        self.epoch_lr = partial["lr"]  # a per-batch schedule has moved on since the epoch began
        return list(partial["losses"]), list(partial["norms"]), time.perf_counter() - partial["seconds"]

    def save_partial_epoch(self, losses: list[float], norms: list[float], started: float) -> None:
        # Only the in-memory batcher knows its position inside an epoch; other sources redo the epoch.
        if isinstance(self.train, TensorBatcher):
            self.state.extra["partial_epoch"] = {"losses": losses, "norms": norms, "lr": self.epoch_lr,
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
        what = "loss" if not math.isfinite(loss_value) else "gradient norm"
        value = loss_value if what == "loss" else norm_value
        self.state.extra["nonfinite"] = True
        return (f"non-finite {what} ({value}) at epoch {self.state.epoch + 1}, batch {batch_index + 1}, "
                f"step {self.state.step + 1}; no update was applied. Lower the learning rate ~10x, "
                "add clip_grad_norm=1.0, and check the data for NaN/Inf or unscaled features")

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
        if threads == "auto":
            # Small models gain nothing from a second intra-op thread, and any model's spin-waiting threads
            # collapse (3-40x slower) when a neighbour process is busy (reference/performance.md §7): one thread
            # unless the step is GEMM-heavy and the machine looks idle.
            if self.device.type != "cpu":
                return None
            batch = self.options["batch_size"] or getattr(self.train, "n", 1)
            macs_per_step = batch * sum(p.numel() for p in self.parameters)
            busy = os.getloadavg()[0] > max(1.0, (os.cpu_count() or 1) - 0.5) if hasattr(os, "getloadavg") else False
            return 1 if macs_per_step < 4_000_000 or busy else None
        if threads is None:
            return None
        _check_number("threads", threads, 1, integer=True)
        return threads

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
            self.state.extra["signal"] = signum
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
        self.state.extra["checks"] = findings
        if self.options["verbose"] and distributed.is_main_process():
            for finding in findings:
                print(finding.render())


# -- evaluation ------------------------------------------------------------------------------------------------


def batch_rows(batch: Any) -> int:
    """Rows in a batch: the first dimension of its first tensor (1 when it holds none)."""
    if isinstance(batch, torch.Tensor):
        return len(batch) if batch.dim() else 1
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (tuple, list)) else ()
    return next((batch_rows(item) for item in items if isinstance(item, (torch.Tensor, tuple, list, dict))), 1)


def check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model is a {type(model).__name__}, not a torch.nn.Module; build it with nn.Sequential "
                          "or an nn.Module subclass")


def evaluate_source(model: nn.Module, data: Any, loss: Any, metrics: Any, batch_size: int | None,
                    device: Any, compute_loss: Any) -> dict[str, float]:
    """Mean loss per row over `data` (a `reduction='sum'` loss is divided by the rows), plus metrics."""
    check_model(model)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size={batch_size!r} is not a positive integer")
    if isinstance(data, torch.Tensor):
        raise ConfigError("evaluate needs (inputs, targets), a Dataset or a DataLoader, not a bare tensor; "
                          "use gl.predict(model, inputs) for outputs without targets")
    device = resolve_device(device) if device is not None else _model_device(model)
    loss_fn = loss if isinstance(loss, ShapeGuard) else ShapeGuard(make_loss(loss))
    summed = getattr(loss_fn.loss_fn, "reduction", "mean") == "sum"  # a batch's loss is already a sum
    metric_fns = metrics if isinstance(metrics, dict) and all(callable(f) for f in metrics.values()) \
        else make_metrics(metrics)
    # Validation needs no small batches: in-memory data goes through in chunks of at least 8192 rows.
    source = make_source(data, max(batch_size or 0, 8192), False, None, "val")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            total, count, outputs_all, targets_all = 0.0, 0, [], []
            for batch in source.epoch():
                batch = move_to(batch, device)
                if compute_loss is not None:  # a custom loss is a batch mean: weight it by the batch's rows
                    rows = batch_rows(batch)
                    total += float(compute_loss(model, batch)) * rows
                    count += rows
                    continue
                inputs, targets = batch
                outputs = model(inputs)
                total += float(loss_fn(outputs, targets)) * (1 if summed else len(targets))
                count += len(targets)
                if metric_fns:
                    outputs_all.append(outputs)
                    targets_all.append(targets)
            if count == 0:
                raise ConfigError("evaluation data is empty (no batches); pass at least one example")
            result = {"loss": total / count}
            if metric_fns and outputs_all:
                outputs, targets = torch.cat(outputs_all), torch.cat(targets_all)
                result.update({name: float(fn(outputs, targets)) for name, fn in metric_fns.items()})
    finally:
        model.train(was_training)
    return result


def predict_tensor(model: nn.Module, inputs: Any, batch_size: int | None, device: Any) -> torch.Tensor:
    check_model(model)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size={batch_size!r} is not a positive integer (or None for one pass)")
    if isinstance(inputs, str):
        raise ConfigError(f"inputs is the string {inputs[:40]!r}; pass a tensor or an array of features")
    device = resolve_device(device) if device is not None else _model_device(model)
    inputs = as_tensor(inputs, "inputs")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            size = batch_size or len(inputs)
            return torch.cat([model(chunk.to(device)).cpu() for chunk in inputs.split(size)])
    finally:
        model.train(was_training)


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")

