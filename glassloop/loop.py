"""`fit()` and `evaluate()`: the heartbeat the lessons teach, one commented line per step.

    zero_grad -> forward -> loss -> backward -> (clip) -> step -> (per-step schedule)
    then evaluate under model.eval() + torch.no_grad(), the per-epoch schedule, and the epoch-end callbacks.

Everything that is not the heartbeat lives elsewhere so that this file reads like lesson 004's loop: the options
(glassloop/core/options.py), the pieces built from them (glassloop/run.py), the epoch's accounts
(glassloop/epochs.py), threads and signals (glassloop/process.py).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from glassloop.core.evaluation import evaluate_source, predict_tensor
from glassloop.core.options import FitOptions
from glassloop.core.state import History
from glassloop.process import process_guards
from glassloop.run import Run


def fit(model: torch.nn.Module, train: Any, val: Any = None, loss: Any = "mse", optimizer: Any = "adam",
        lr: float = 1e-3, weight_decay: float = 0.0, momentum: float = 0.0, epochs: int = 10,
        batch_size: int | None = 32, shuffle: bool = True, scheduler: Any = None,
        clip_grad_norm: float | None = None, callbacks: Any = (), seed: int | None = None, device: Any = "auto",
        metrics: Any = None, progress: Any = "auto", verbose: bool = True, *, compute_loss: Any = None,
        scheduler_step: str = "auto", threads: Any = "auto", checks: bool = False, accumulate: int = 1,
        precision: str = "32", fused_step: bool = True, check_finite_every: int = 1) -> History:
    """Train `model` on `train` with the lessons' loop and return its `History`. See docs/loop.md for every option.

    `train`/`val` may be `(inputs, targets)` with `inputs` a dict, tuple/list or nested structure of tensors: the
    model is called as `model(**inputs)` for a dict and `model(*inputs)` for a tuple/list; batching, shuffling,
    device moves and DDP sharding apply to every leaf.
    """
    options = FitOptions(loss=loss, optimizer=optimizer, lr=lr, weight_decay=weight_decay, momentum=momentum,
                         epochs=epochs, batch_size=batch_size, shuffle=shuffle, scheduler=scheduler,
                         clip_grad_norm=clip_grad_norm, callbacks=callbacks, seed=seed, device=device,
                         metrics=metrics, progress=progress, verbose=verbose, compute_loss=compute_loss,
                         scheduler_step=scheduler_step, threads=threads, checks=checks, accumulate=accumulate,
                         precision=precision, fused_step=fused_step,
                         check_finite_every=check_finite_every)  # typed, frozen, validated once
    run = Run(model, train, val, options)  # every piece built before the first batch
    with process_guards(run):  # intra-op threads, SIGINT/SIGTERM -> stop after the current step
        return heartbeat(run)


def heartbeat(run: Run) -> History:
    state, model, hooks, book, micro, fused = run.state, run.model, run.callbacks, run.book, run.micro, run.fused
    step, autocast = run.optimizer_step, run.precision.autocast  # optimizer.step (fused Adam: its kernel)
    try:
        hooks("on_fit_start", state)  # a resuming Checkpoint restores everything here
        while state.epoch < run.epochs and not state.should_stop:
            hooks("on_epoch_start", state)
            model.train()                                                   # dropout/batch-norm: training mode
            losses, norms, started = book.start_epoch()
            for index, batch in enumerate(run.train.epoch()):
                if run.batch_hooks:
                    run.announce("on_batch_start", batch=batch, batch_index=index)
                if micro.starts_group(index):
                    run.gradients.clear()                                   # 1. optimizer.zero_grad()
                if fused is not None:                                       #    the same step by hand, no graph:
                    loss = fused(*batch)                                    # 2-4. forward, loss, backward (fused.py)
                else:
                    with autocast, micro.sync(index):                       #    (precision=; DDP no_sync in a group)
                        if run.compute_loss is None:
                            inputs, targets = batch                         #    (already on run.device)
                            outputs = model(inputs)                         # 2. forward pass
                            loss = run.loss_fn(outputs, targets)            # 3. loss: one scalar
                        else:
                            loss = run.compute_loss(model, batch)           # 2-3. custom forward + loss
                    if micro.plain:
                        loss.backward()                                     # 4. backward: fill every .grad
                    elif micro.backward(loss, index):                       #    accumulate=k / fp16: scaled
                        loss = micro.group_loss()                           #    the group's loss, for the record
                    else:
                        continue                                            #    more micro-batches, then a step
                if run.after_backward_hooks:
                    run.announce("on_after_backward", loss=loss)
                run.precision.unscale(run.optimizer)                        #    fp16: true gradients first
                norm = run.gradients.norm(run.clip_grad_norm)               # 5. pre-clip norm; clip if asked
                loss_value, norm_value = book.read(loss, norm)              #    (check_finite_every=N: each Nth)
                if not math.isfinite(loss_value + norm_value):              #    never step on NaN/Inf
                    if run.precision.scaler is not None and math.isfinite(loss_value):
                        run.precision.skip_overflow(run.optimizer)          #    fp16 overflow: the scaler skips it
                        continue
                    state.stop(book.nonfinite(loss_value, norm_value, len(losses)))
                    losses.append(loss_value)
                    break
                step()                                                      # 6. optimizer.step(): update
                if run.per_batch_schedule:
                    run.scheduler.step()                                    #    onecycle/warmup: every step
                losses.append(loss_value)
                norms.append(norm_value)
                state.step += 1
                if run.batch_hooks:
                    run.announce("on_batch_end", loss=loss, grad_norm=norm)
                if state.should_stop:                                       # a signal: stop after this step
                    break
            if state.interrupted_by and run.train.mid_epoch:                # cut short: checkpoint resumes it
                book.save_partial(started)
                break
            record = book.record()                                          # + validation under no_grad
            book.step_schedule(record)                                      # per-epoch schedules (plateau: val)
            book.end_epoch(record, started)
            hooks("on_epoch_end", state)                                    # monitors, checkpoint, reporters
            book.agree_to_stop()                                            #    (torchrun: all ranks stop together)
            state.epoch += 1
        book.finish(state.interrupted_by)
        hooks("on_fit_end", state)
    except BaseException as error:
        explained = run.explain(error)                                      #    first forward: one-line error
        state.exception = error if explained is None else explained
        hooks("on_exception", state)
        if explained is not None:
            raise explained from None
        raise
    return state.history


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: Any, loss: Any = "mse", metrics: Any = None,
             batch_size: int | None = 8192, device: Any = None, compute_loss: Any = None) -> dict[str, float]:
    """Mean loss (and metrics) of `model` on `data` under `model.eval()` + `torch.no_grad()`.

    Returns `{"loss": ..., "<metric>": ...}`. The model's train/eval mode is restored afterwards.
    """
    return evaluate_source(model, data, loss, metrics, batch_size, device, compute_loss)


@torch.no_grad()
def predict(model: torch.nn.Module, inputs: Any, batch_size: int | None = 8192, device: Any = None) -> torch.Tensor:
    """Model outputs for `inputs` under eval mode and no_grad, returned on the CPU.

    `inputs` is a tensor or array, or a structure of them: a dict is passed as `model(**inputs)`, a tuple or
    list as `model(*inputs)` (see glassloop/core/structured.py); every leaf is split into the same row chunks.
    """
    return predict_tensor(model, inputs, batch_size, device)
