"""The epoch's accounts: losses and gradient norms of its steps, the record at its end, the per-epoch schedule,
an epoch cut short by a signal (saved so a resume continues at the next batch), and, under torchrun, the
decisions every rank must share (non-finite values, a signal, the record early stopping reads)."""

from __future__ import annotations

import math
import signal
import time
from typing import Any

import torch

from glassloop.core import distributed
from glassloop.core.batches import TensorBatcher
from glassloop.core.building import is_plateau
from glassloop.core.evaluation import Evaluation
from glassloop.core.readings import DeferredReadings
from glassloop.core.rules import nonfinite_reason


class EpochBook:
    def __init__(self, run: Any) -> None:
        self.run = run
        self.state = run.state
        self.epoch_lr = 0.0
        self.evaluation: Evaluation | None = None
        self.deferred = None  # check_finite_every=N > 1 (glassloop/core/readings.py), on the flat optimizer's path
        if run.options.check_finite_every > 1 and run.gradients.kind is not None and run.world_size == 1:
            self.deferred = DeferredReadings(run.options.check_finite_every, run.device)
            run.gradients.found_inf = self.deferred.found_inf
        self.losses: list[float] = []  # this epoch's lists (the heartbeat appends; deferred readings fill them)
        self.norms: list[float] = []

    def start_epoch(self) -> tuple[list[float], list[float], float]:
        """Empty accumulators, or those of an epoch interrupted mid-way and now resumed."""
        self.run.micro.start_epoch(self.run.train)
        self.run.gradients.refresh()  # a restore (resume, user code) may have replaced the flat buffers' views
        partial, self.state.partial_epoch = self.state.partial_epoch, None
        if partial is None:
            self.epoch_lr = self.run.optimizer.param_groups[0]["lr"]  # the LR this epoch trains with
            self.losses, self.norms = [], []
            return self.losses, self.norms, time.perf_counter()
        self.epoch_lr = partial["lr"]  # a per-batch schedule has moved on since the epoch began
        self.losses, self.norms = list(partial["losses"]), list(partial["norms"])
        return self.losses, self.norms, time.perf_counter() - partial["seconds"]

    def read(self, loss: torch.Tensor, norm: torch.Tensor) -> tuple[float, float]:
        """The step's loss and pre-clip norm as numbers. Under torchrun every rank must take the same branch
        (step, stop on NaN/Inf, stop on a signal), so the three facts are all-reduced in one collective."""
        if self.deferred is not None and self.run.gradients.skips_on_device:
            if not self.deferred.add(loss, norm):
                return 0.0, 0.0  # a placeholder in the lists, filled in when the pending values are read
            return self.settle(current=True)
        if self.run.world_size == 1:
            if norm.device.type == "cpu":  # no device to wait for: two reads are cheaper than a stack
                return loss.item(), norm.item()
            loss_value, norm_value = torch.stack((loss.detach().float(), norm.float())).tolist()  # one sync
            return loss_value, norm_value
        interrupted = float(self.state.interrupted_by is not None)
        shared = torch.stack((loss.detach().double(), norm.detach().double(),
                              torch.tensor(interrupted, dtype=torch.float64, device=norm.device)))
        loss_sum, norm_sum, interrupted_ranks = distributed.all_reduce_tensor(shared).tolist()
        if interrupted_ranks and self.state.interrupted_by is None:  # this rank stops exactly as the others
            self.state.interrupted_by = int(signal.SIGTERM)
            self.state.should_stop = True
            self.state.interrupt_reason = ("interrupted on another rank; resume with gl.Checkpoint(run_dir, "
                                           "resume=True) or `glassloop resume DIR`")
        loss_value = loss.item() if math.isfinite(loss_sum) else loss_sum
        return loss_value, norm_sum / self.run.world_size

    def settle(self, current: bool) -> tuple[float, float]:
        """Read the pending values into the epoch's lists (the current step's, if `current`, is returned instead).
        At the first non-finite pair the lists end there and the steps after it, skipped on the device, are taken
        back; without a current step the run stops here with the usual message."""
        values = self.deferred.read() if self.deferred is not None else []
        appended = len(values) - int(current)
        base = len(self.losses) - appended
        for offset, (loss_value, norm_value) in enumerate(values):
            if not math.isfinite(loss_value + norm_value):
                del self.losses[base + offset:], self.norms[base + offset:]
                self.state.step -= max(appended - offset, 0)
                if not current:
                    self.state.stop(self.nonfinite(loss_value, norm_value, len(self.losses)))
                    self.losses.append(loss_value)
                return loss_value, norm_value
            if offset < appended:
                self.losses[base + offset], self.norms[base + offset] = loss_value, norm_value
        return values[-1] if current else (0.0, 0.0)

    def nonfinite(self, loss_value: float, norm_value: float, batch_index: int) -> str:
        self.state.nonfinite = True
        return nonfinite_reason(loss_value, norm_value, self.state.epoch, batch_index, self.state.step)

    def save_partial(self, started: float) -> None:
        self.settle(current=False)
        losses, norms = self.losses, self.norms
        # Only the in-memory batcher knows its position inside an epoch; other sources redo the epoch.
        if isinstance(self.run.train, TensorBatcher):
            self.state.partial_epoch = {"losses": losses, "norms": norms, "lr": self.epoch_lr,
                                        "seconds": time.perf_counter() - started}

    def record(self) -> dict[str, Any]:
        """The epoch's record from the lists `start_epoch` handed the heartbeat (+ validation)."""
        self.settle(current=False)  # check_finite_every=N: the epoch's last pending values
        losses, norms = self.losses, self.norms
        sums = [math.fsum(losses), len(losses), math.fsum(norms), len(norms)]
        if self.run.world_size > 1:  # every rank saw its shard: the epoch means are over all of them
            sums = distributed.all_reduce_sums(sums, self.run.device)
        record = {
            "epoch": self.state.epoch,
            "train_loss": sums[0] / sums[1] if sums[1] else float("nan"),
            "val_loss": None,
            "lr": self.epoch_lr,
            "grad_norm": sums[2] / sums[3] if sums[3] else float("nan"),
        }
        record.update(self.validate())                                  # model.eval() + torch.no_grad()
        # Early stopping and plateau read this record on every rank: rank 0's numbers decide for all.
        return distributed.same_on_all_ranks(record) if self.run.world_size > 1 else record

    def validate(self) -> dict[str, Any]:
        run = self.run
        if run.val is None:
            return {}
        if self.evaluation is None:  # checked and moved to the device once, reused every epoch
            self.evaluation = Evaluation(run.module, run.val, run.val_loss_fn, run.metrics, run.options.batch_size,
                                         run.device, run.compute_loss,
                                         run.fused.forward if run.fused is not None else None)
        result = self.evaluation(run.module)
        return {("val_loss" if key == "loss" else f"val_{key}"): value for key, value in result.items()}

    def step_schedule(self, record: dict[str, Any]) -> None:
        scheduler = self.run.scheduler
        if scheduler is None or self.run.per_batch_schedule:
            return  # (a stopped run still steps: a resume after a signal here must see the same schedule)
        if is_plateau(scheduler):
            scheduler.step(record["val_loss"] if record["val_loss"] is not None else record["train_loss"])
        else:
            scheduler.step()

    def end_epoch(self, record: dict[str, Any], started: float) -> None:
        record["seconds"] = time.perf_counter() - started
        self.state.record = record
        self.state.history.append(record)

    def agree_to_stop(self) -> None:
        """After the epoch-end callbacks: a rank that stopped (a signal during validation) stops them all."""
        if self.run.world_size > 1:
            stops = distributed.all_reduce_sums([float(self.state.should_stop)], self.run.device)[0]
            if stops and not self.state.should_stop:
                self.state.stop("stopped on another rank; resume with gl.Checkpoint(run_dir, resume=True)")

    def finish(self, interrupted: int | None) -> None:
        history = self.state.history
        history.signal = interrupted
        if self.state.stop_reason is not None or history.stop_reason is None:
            history.stop_reason = self.state.final_stop_reason()
