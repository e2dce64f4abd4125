"""The heartbeat of a sweep: K configurations through each step together.

    gather -> forward -> loss -> backward -> pre-clip norms (clip) -> non-finite guard -> step -> (per-step schedule)
    then validate, record, the per-epoch schedule, per-configuration callbacks, the patience rule.

The rules are gl.fit's own (glassloop.core.rules): the non-finite guard stops a configuration before its bad
update with gl.fit's message, and patience is EarlyStopping's rule (a non-finite value neither improves nor
counts). A stopped configuration is frozen (left out of every later update) and ends with its best epoch's weights.
Each configuration draws its data order from its own `torch.Generator` seeded with its seed, one `randperm`
per epoch, exactly like gl.fit's TensorBatcher.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from glassloop.core.guards import check_loss_inputs
from glassloop.core.rules import improved, nonfinite_reason, patience_reason
from glassloop.core.state import History, shown_epoch
from glassloop.errors import CallbackError, GlassloopError
from glassloop.sweeps.optim import StackedOptimizer
from glassloop.sweeps.schedules import StackedSchedules
from glassloop.sweeps.stacks import StackedLoss

CALLBACK_EVENTS = ("on_fit_start", "on_epoch_end", "on_fit_end")


@dataclass(frozen=True)
class SweepOptions:
    """The options every configuration shares, validated by `gl.sweep` before anything is built."""

    optimizer: str = "adam"
    epochs: int = 10
    batch_size: int | None = 32
    shuffle: bool = True
    patience: int | None = None
    scheduler: str | None = None
    verbose: bool = True


@dataclass
class SweepState:
    """What a sweep callback sees: one configuration at a time (`index`, `config`, its `record` and `history`).
    `epoch` is 0-based, as in gl.fit's LoopState; `stop(reason)` freezes this configuration after this epoch."""

    index: int
    config: dict[str, Any]
    epoch: int
    epochs: int
    history: History
    record: dict[str, Any] = field(default_factory=dict)
    should_stop: bool = False
    stop_reason: str | None = None

    def stop(self, reason: str) -> None:
        self.should_stop = True
        if self.stop_reason is None:
            self.stop_reason = reason


class Trainer:
    """K configurations trained step by step; `epoch` is the next epoch to train (0-based)."""

    def __init__(self, stack: Any, configs: list[dict[str, Any]], loss_fn: Any,
                 train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor] | None,
                 options: SweepOptions, callbacks: list[Any] | None = None) -> None:
        self.stack, self.configs, self.k, self.options = stack, configs, len(configs), options
        self.loss = StackedLoss(loss_fn)
        self.optimizer = StackedOptimizer(options.optimizer, stack.flat, stack.grad, configs)
        self.train_data, self.val_data = train, val
        self.n = len(train[0])
        self.batch_size = self.n if options.batch_size is None else options.batch_size
        self.steps_per_epoch = math.ceil(self.n / self.batch_size)
        self.schedules = None if options.scheduler is None else StackedSchedules(
            options.scheduler, options.optimizer, configs, options.epochs, self.steps_per_epoch)
        self.follow_schedules()
        self.generators = [torch.Generator().manual_seed(c["seed"]) for c in configs]
        clips = [c["clip_grad_norm"] for c in configs]
        self.clip = None if all(c is None for c in clips) else torch.tensor(
            [math.inf if c is None else float(c) for c in clips], dtype=stack.flat.dtype, device=stack.flat.device)
        self.callbacks = list(callbacks or [])
        self.histories = [History() for _ in configs]  # monitor val_loss (train_loss without val data)
        self.active = [True] * self.k
        self.running = torch.ones(self.k, dtype=torch.bool, device=stack.flat.device)  # active, as a tensor
        self.stopped_epoch: list[int | None] = [None] * self.k
        self.best = stack.flat.detach().clone()  # each configuration's best epoch's weights
        self.best_value: list[float | None] = [None] * self.k
        self.wait = [0] * self.k
        self.epoch = 0
        self.step_count = 0

    @property
    def done(self) -> bool:
        return self.epoch >= self.options.epochs or not any(self.active)

    def follow_schedules(self) -> None:
        if self.schedules is not None:
            self.optimizer.set_hyperparameters(*self.schedules.hyperparameters())

    def run(self, checkpoint: Any = None) -> list[History]:
        while not self.done:
            started = time.perf_counter()
            self.recording = list(self.active)  # configurations that train (and get a record) this epoch
            self.last_step: dict[int, int] = {}  # configuration -> the batch it went non-finite at
            self.epoch_lrs = list(self.optimizer.lrs)  # the lr each configuration trains this epoch with
            losses, norms = self.train_epoch()
            train_loss, grad_norm = self.epoch_means(losses, norms)
            val_loss = self.validate() if self.val_data is not None else [None] * self.k
            self.end_epoch(train_loss, val_loss, grad_norm, time.perf_counter() - started)
            self.epoch += 1
            if checkpoint is not None and not self.done:
                checkpoint.save(self, finished=False)
        self.finish()
        if checkpoint is not None:
            checkpoint.save(self, finished=True)
        return self.histories

    def train_epoch(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.stack.train(True)
        per_batch = self.schedules is not None and self.schedules.per_batch
        losses, norms = [], []
        for index, (inputs, targets) in enumerate(self.epoch_batches()):
            if self.epoch == 0 and index == 0:
                self.check_shapes(inputs, targets)
            per_config, grad = self.forward_backward(inputs, targets)        # 1-4. forward, loss, backward
            norm = torch.linalg.vector_norm(grad, dim=1)                      # 5. pre-clip norms [K]
            if self.clip is not None:  # torch's clip_grad_norm_: scale by min(1, max / (norm + 1e-6))
                grad.mul_((self.clip / (norm + 1e-6)).clamp_(max=1.0).unsqueeze(1))
            bad = torch.isfinite(per_config + norm).logical_not_().logical_and_(self.running)
            if bad.any():  # gl.fit's guard: never step on NaN/Inf; that configuration stops here
                self.freeze_nonfinite(bad, per_config, norm, index)
            self.optimizer.step()                                             # 6. update
            if per_batch:
                self.schedules.step_batch()                                   #    onecycle/warmup: every step
                self.follow_schedules()
            losses.append(per_config)
            norms.append(norm)
            self.step_count += 1
        return torch.stack(losses), torch.stack(norms)

    def forward_backward(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stack = self.stack
        if stack.method == "bmm":
            outputs, saved = stack.forward(inputs, keep=True)
            per_config, grad_out = self.loss.value_and_grad(outputs, targets)
            return per_config, stack.backward(grad_out, saved)  # the hand-written backward fills stack.grad
        stack.grad.zero_()
        per_config = self.loss(stack.forward(inputs)[0], targets)
        per_config.sum().backward()
        return per_config.detach(), stack.grad

    def epoch_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        inputs, targets = self.train_data
        if self.options.shuffle:
            order = torch.stack([torch.randperm(self.n, generator=g) for g in self.generators]).to(inputs.device)
            inputs, targets = inputs[order], targets[order]  # [K, N, ...]: each config its own permutation
        else:
            inputs = inputs.expand(self.k, *inputs.shape)
            targets = targets.expand(self.k, *targets.shape)
        return list(zip(inputs.split(self.batch_size, 1), targets.split(self.batch_size, 1)))

    def epoch_means(self, losses: torch.Tensor, norms: torch.Tensor) -> tuple[list[float], list[float]]:
        """Per-configuration means of the step losses [S, K] and pre-clip norms; a configuration that went
        non-finite at batch s counts losses 0..s and norms 0..s-1, as gl.fit's record does."""
        train_loss = losses.double().mean(0).tolist()
        grad_norm = norms.double().mean(0).tolist()
        for index, step in self.last_step.items():
            train_loss[index] = losses[: step + 1, index].double().mean().item()
            grad_norm[index] = norms[:step, index].double().mean().item() if step else math.nan
        return train_loss, grad_norm

    def freeze_nonfinite(self, bad: torch.Tensor, per_config: torch.Tensor, norm: torch.Tensor,
                         batch_index: int) -> None:
        for index in bad.nonzero().flatten().tolist():
            reason = nonfinite_reason(per_config[index].item(), norm[index].item(), self.epoch, batch_index,
                                      self.step_count)
            self.stop(index, reason)
            self.last_step[index] = batch_index
        self.optimizer.set_active(self.active)

    def check_shapes(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        # gl.fit's shape guard on one configuration's first batch: broadcasting losses fail loudly here too.
        with torch.no_grad():
            outputs = self.stack.forward(inputs)[0]
        check_loss_inputs(self.loss.loss_fn, outputs[0], targets[0])

    @torch.no_grad()
    def validate(self) -> list[float]:
        self.stack.train(False)
        inputs, targets = self.val_data
        total = torch.zeros(self.k, dtype=torch.float64, device=inputs.device)
        chunk = self.stack.chunk_rows()
        for x, y in zip(inputs.split(chunk), targets.split(chunk)):
            outputs = self.stack.forward_shared(x)
            total += self.loss(outputs, y.expand(self.k, *y.shape)).double() * len(y)
        self.stack.train(True)
        return (total / len(inputs)).tolist()

    def end_epoch(self, train_loss: list[float], val_loss: list[Any], grad_norm: list[float],
                  seconds: float) -> None:
        monitored = [t if v is None else v for t, v in zip(train_loss, val_loss)]
        if self.schedules is not None:
            self.schedules.step_epoch(monitored, self.recording)  # plateau: each configuration's val loss
            self.follow_schedules()
        improved_rows = []
        for index in (i for i in range(self.k) if self.recording[i]):
            record = {"epoch": self.epoch, "train_loss": train_loss[index], "val_loss": val_loss[index],
                      "lr": self.epoch_lrs[index], "grad_norm": grad_norm[index], "seconds": seconds}
            self.histories[index].append(record)
            self.call("on_epoch_end", index, record)                           # user callbacks, then monitors
            if self.apply_patience(index, monitored[index]):
                improved_rows.append(index)
        if improved_rows:
            rows = torch.tensor(improved_rows, device=self.best.device)
            self.best[rows] = self.stack.flat.detach()[rows]
        if self.active != self.optimizer.active_rows:
            self.optimizer.set_active(self.active)
        if self.options.verbose:
            self.print_epoch(monitored, seconds)

    def apply_patience(self, index: int, value: float) -> bool:
        """EarlyStopping's rule for one configuration; True when this epoch is its best so far."""
        if improved(value, self.best_value[index]):
            self.best_value[index], self.wait[index] = value, 0
            return True
        if not self.active[index] or not math.isfinite(value):
            return False  # stopped during this epoch, or a non-finite value (which neither improves nor counts)
        self.wait[index] += 1
        patience = self.options.patience
        if patience is not None and self.wait[index] >= patience:
            self.stop(index, patience_reason("val_loss", patience, self.best_value[index],
                                             self.histories[index].best_epoch))
        return False

    def call(self, event: str, index: int, record: dict[str, Any] | None = None) -> None:
        """Every callback's `event` for configuration `index`; a callback's stop() freezes it after this epoch."""
        if not self.callbacks:
            return
        state = SweepState(index, dict(self.configs[index]), self.epoch, self.options.epochs,
                           self.histories[index], record or {})
        for callback in self.callbacks:
            method = getattr(callback, event, None)
            if not callable(method):
                continue
            try:
                method(state)
            except GlassloopError:
                raise
            except Exception as error:
                raise CallbackError(f"callback {type(callback).__name__} failed in {event} for configuration "
                                    f"{index}: {type(error).__name__}: {error}") from error
        if state.should_stop and self.active[index]:
            self.stop(index, state.stop_reason or f"stopped by a callback at epoch {shown_epoch(self.epoch)}")

    def print_epoch(self, monitored: list[float], seconds: float) -> None:
        shown = [v for v, recording in zip(monitored, self.recording) if recording]
        name = "val_loss" if self.val_data is not None else "train_loss"
        finite = sorted(v for v in shown if math.isfinite(v))
        middle = finite[len(finite) // 2] if finite else math.nan
        print(f"epoch {shown_epoch(self.epoch):>4}/{self.options.epochs}  active {sum(self.active):>3}/{self.k}  "
              f"{name} median {middle:.6g}  best {min(finite, default=math.nan):.6g}  {seconds:.3f}s")

    def stop(self, index: int, reason: str) -> None:
        self.active[index] = False
        self.running[index] = False
        self.stopped_epoch[index] = self.epoch
        self.histories[index].stop_reason = reason

    def start(self) -> None:
        for index in range(self.k):
            self.call("on_fit_start", index)

    def finish(self) -> None:
        for index, history in enumerate(self.histories):
            if history.stop_reason is None:
                history.stop_reason = f"completed {self.options.epochs} epochs"
            self.call("on_fit_end", index)
