"""`gl.sweep(...)`: train every configuration of a grid at once, and the checks made before anything trains.

Small models spend almost all of a step in per-op overhead, so K runs one after another waste the machine. Here
the K models' weights live in one `[K, P]` tensor and every step is one batched forward, backward and update for
all of them (glassloop/sweeps/stacks.py). Each configuration keeps what a lone `gl.fit` run would have: its
initial weights (`build_model` after seeding with its seed), its data order, lr, weight decay, momentum,
clipping, LR schedule, non-finite guard, early stopping and best epoch (glassloop/sweeps/trainer.py).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from glassloop.core.batches import TensorBatcher, make_source
from glassloop.core.building import OPTIMIZERS, SCHEDULERS, make_loss
from glassloop.core.devices import resolve_device, seed_everything
from glassloop.core.options import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_SEED
from glassloop.core.rules import choose_threads
from glassloop.errors import ConfigError
from glassloop.sweeps.result import SweepResult
from glassloop.sweeps.resume import SweepCheckpoint
from glassloop.sweeps.stacks import make_stack
from glassloop.sweeps.tracking import log_to_mlflow
from glassloop.sweeps.trainer import CALLBACK_EVENTS, SweepOptions, Trainer

GRID_KEYS = ("lr", "weight_decay", "momentum", "seed", "clip_grad_norm")


def sweep(build_model: Callable[..., nn.Module], train: Any, val: Any = None,
          grid: Mapping[str, Any] | None = None, *, loss: Any = "mse", optimizer: str = "adam", lr: float = 1e-3,
          weight_decay: float = 0.0, momentum: float = 0.0, epochs: int = 10, batch_size: int | None = 32,
          shuffle: bool = True, clip_grad_norm: float | None = None, patience: int | None = None,
          seed: int = 0, scheduler: str | None = None, device: Any = "cpu", threads: Any = "auto",
          verbose: bool = True, mlflow: Any = None, method: str = "auto", callbacks: Any = (),
          run_dir: Any = None, resume: bool = False) -> SweepResult:
    """Train every configuration of `grid` at once and return a `SweepResult`.

    `grid` maps any of lr, weight_decay, momentum, seed, clip_grad_norm to a list of values; the configurations
    are their product (keys not in the grid take the keyword's value). `build_model()` or `build_model(config)`
    is called after seeding with the configuration's seed. `train`/`val` are `(inputs, targets)` tensors.
    `scheduler` is a name as in gl.fit (step, exponential, cosine, warmup_cosine, plateau, onecycle), applied to
    each configuration's own lr. `patience` stops a configuration whose val loss has not improved for that many
    epochs. `callbacks` are objects with `on_fit_start`/`on_epoch_end`/`on_fit_end(state)`, called once per
    configuration (`state.index`, `state.config`, `state.record`, `state.history`; `state.stop(reason)`).
    `run_dir` keeps `latest.pt` (every epoch) and `sweep.csv`; `resume=True` continues the sweep saved there,
    bitwise. `mlflow=True`, a tracking URI, or a dict (tracking_uri, experiment, run_name) logs a parent run with
    one child per configuration. `method` is "auto", "bmm" (Sequential fast path) or "vmap".
    """
    configs, grid_keys = expand_grid(grid, lr=lr, weight_decay=weight_decay, momentum=momentum, seed=seed,
                                     clip_grad_norm=clip_grad_norm)
    options = SweepOptions(optimizer=check_optimizer(optimizer, configs), epochs=epochs, batch_size=batch_size,
                           shuffle=shuffle, patience=patience, scheduler=scheduler, verbose=verbose)
    check_options(options, method, val)
    callbacks = check_callbacks(callbacks)
    checkpoint = SweepCheckpoint(run_dir, resume) if run_dir is not None else None
    if checkpoint is not None:
        checkpoint.check_directory()
    dev = resolve_device(device)
    inputs, targets = tensor_pair(train, batch_size, "train")
    val_pair = tensor_pair(val, batch_size, "val") if val is not None else None
    models = build_models(build_model, configs)
    loss_fn = make_loss(loss)
    started = time.perf_counter()
    parameters = sum(p.numel() for p in models[0].parameters())
    with thread_policy(choose_threads(threads, dev, batch_size or len(inputs), parameters)):
        stack = make_stack(models, method, dev)
        trainer = Trainer(stack, configs, loss_fn, on_device(inputs, targets, dev),
                          None if val_pair is None else on_device(*val_pair, dev), options, callbacks)
        train_all(trainer, checkpoint, fingerprint(options, configs, grid_keys, stack, loss, len(inputs),
                                                   None if val_pair is None else len(val_pair[0]), parameters))
    result = SweepResult(configs, grid_keys, trainer.histories, trainer.stopped_epoch, stack, trainer.best,
                         time.perf_counter() - started, has_val=val is not None)
    if checkpoint is not None:
        result.to_csv(checkpoint.run_dir / "sweep.csv")
    if mlflow:
        result.mlflow_run_id = log_to_mlflow(result, mlflow, {
            "loss": loss if isinstance(loss, str) else type(loss).__name__, "optimizer": options.optimizer,
            "epochs": epochs, "batch_size": batch_size, "shuffle": shuffle, "patience": patience,
            "scheduler": scheduler, "method": stack.method, "configurations": len(configs)})
    if verbose:
        print(result.report())
    return result


def train_all(trainer: Trainer, checkpoint: SweepCheckpoint | None, fingerprint: dict[str, Any]) -> None:
    """on_fit_start, then (with a run_dir) restore a saved sweep, then the epochs; latest.pt after each."""
    trainer.start()
    if checkpoint is None:
        trainer.run()
        return
    try:
        if checkpoint.open(trainer, fingerprint):
            print(f"sweep in {checkpoint.run_dir} already finished; nothing to resume")
            return
        trainer.run(checkpoint)
    finally:
        checkpoint.close()


def on_device(inputs: torch.Tensor, targets: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
    return inputs.to(device), targets.to(device)


def fingerprint(options: SweepOptions, configs: list[dict[str, Any]], grid_keys: list[str], stack: Any,
                loss: Any, train_rows: int, val_rows: int | None, parameters: int) -> dict[str, Any]:
    """What must not change between a sweep and its resume (else resume would silently train something else)."""
    return {"configs": configs, "grid_keys": grid_keys, "method": stack.method, "parameters": parameters,
            "loss": loss if isinstance(loss, str) else type(loss).__name__, "optimizer": options.optimizer,
            "epochs": options.epochs, "batch_size": options.batch_size, "shuffle": options.shuffle,
            "patience": options.patience, "scheduler": options.scheduler, "train_rows": train_rows,
            "val_rows": val_rows}


@contextlib.contextmanager
def thread_policy(wanted: int | None) -> Iterator[None]:
    """gl.fit's thread policy (glassloop.core.rules.choose_threads) for the sweep, restored afterwards."""
    previous = torch.get_num_threads()
    if wanted and wanted != previous:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if wanted and wanted != previous:
            torch.set_num_threads(previous)


def expand_grid(grid: Mapping[str, Any] | None, **defaults: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The product of the grid's value lists, in key order; keys outside the grid take their defaults."""
    if grid is None:
        grid = {}
    if not isinstance(grid, Mapping):
        raise ConfigError(f"grid={grid!r} should be a dict such as {{'lr': [1e-3, 3e-3], 'seed': range(8)}}")
    unknown = [k for k in grid if k not in GRID_KEYS]
    if unknown:
        raise ConfigError(f"grid key{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))} cannot be swept; "
                          f"allowed keys: {', '.join(GRID_KEYS)}")
    values: dict[str, list[Any]] = {}
    for key, options in grid.items():
        if isinstance(options, (str, bytes)) or not isinstance(options, Iterable):
            options = [options]  # a single value fixes the key
        options = list(options)
        if not options:
            raise ConfigError(f"grid[{key!r}] is empty; give at least one value")
        for value in options:
            check_value(key, value)
        values[key] = options
    for key, value in defaults.items():
        check_value(key, value)
    keys = list(values)
    configs = [defaults | dict(zip(keys, combination)) for combination in itertools.product(*values.values())]
    return configs, keys


def check_value(key: str, value: Any) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key == "seed":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
            raise ConfigError(f"seed={value!r} must be an integer from 0 to 2**63 - 1 (as gl.fit's seed)")
    elif key == "clip_grad_norm":
        if value is not None and not (number and math.isfinite(value) and value > 0):
            raise ConfigError(f"clip_grad_norm={value!r} must be a positive number or None")
    elif key == "lr":
        if not (number and math.isfinite(value) and value > 0):
            raise ConfigError(f"lr={value!r} must be a positive number; e.g. lr=1e-3")
    elif not (number and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{key}={value!r} must be a number >= 0")


def check_optimizer(optimizer: Any, configs: list[dict[str, Any]]) -> str:
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise ConfigError(f"sweep optimizer={optimizer!r}; expected a name, one of {', '.join(OPTIMIZERS)} "
                          "(each configuration gets its own copy of that optimizer)")
    if optimizer.lower() != "sgd" and any(c["momentum"] for c in configs):
        raise ConfigError(f"momentum only applies to optimizer='sgd' ({optimizer} has betas); drop momentum or "
                          "use optimizer='sgd'")
    return optimizer.lower()


def check_options(options: SweepOptions, method: str, val: Any) -> None:
    epochs, patience, scheduler, batch_size = options.epochs, options.patience, options.scheduler, options.batch_size
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
        raise ConfigError(f"epochs={epochs!r} must be an integer from 1 to {MAX_EPOCHS}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise ConfigError(f"patience={patience!r} must be an integer >= 1 (epochs to wait) or None")
    if patience is not None and val is None:
        raise ConfigError("patience needs validation data to watch; pass val=(inputs, targets) or patience=None")
    if scheduler is not None and (not isinstance(scheduler, str) or scheduler not in SCHEDULERS):
        raise ConfigError(f"scheduler={scheduler!r}: sweeps take LR schedulers by name, one per configuration: "
                          f"{', '.join(SCHEDULERS)} (as gl.fit's names), or None")
    if not isinstance(options.shuffle, bool):
        raise ConfigError(f"shuffle={options.shuffle!r} must be True or False")
    if isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > MAX_BATCH_SIZE:
        raise ConfigError(f"batch_size={batch_size} is larger than {MAX_BATCH_SIZE}; expected a batch size up to the "
                          "number of rows (batch_size=None takes them all at once)")
    if method not in ("auto", "bmm", "vmap"):
        raise ConfigError(f"method={method!r}; expected 'auto', 'bmm' or 'vmap'")


def check_callbacks(callbacks: Any) -> list[Any]:
    if callbacks is None:
        return []
    callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
    for callback in callbacks:
        if not any(callable(getattr(callback, event, None)) for event in CALLBACK_EVENTS):
            raise ConfigError(f"sweep callback {callback!r} has none of {', '.join(CALLBACK_EVENTS)}; each is "
                              "called once per configuration with a state holding index, config, record, history")
    return callbacks


def tensor_pair(data: Any, batch_size: int | None, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    source = make_source(data, batch_size, False, 0, name)  # same checks (and messages) as gl.fit
    if not isinstance(source, TensorBatcher):
        raise ConfigError(f"sweep {name} data must be an (inputs, targets) pair of tensors or arrays, not "
                          f"{type(data).__name__}; every configuration gathers its own batches from memory")
    if getattr(source, "layout", None) is not None:
        raise ConfigError("gl.sweep trains plain (inputs, targets) tensors; structured inputs (a dict or tuple of "
                          "tensors) train with gl.fit")
    inputs, targets = source.tensors
    return inputs, targets


def build_models(build_model: Any, configs: list[dict[str, Any]]) -> list[nn.Module]:
    if not callable(build_model):
        raise ConfigError(f"build_model={build_model!r} is not callable; pass a function returning a fresh "
                          "nn.Module, e.g. lambda: nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 1))")
    if isinstance(build_model, nn.Module):
        raise ConfigError("build_model is a model instance; pass a function that builds a fresh one, "
                          "e.g. lambda: make_model(), so every configuration starts from its own seed")
    try:
        required = [p for p in inspect.signature(build_model).parameters.values()
                    if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        required = []
    if len(required) > 1:
        raise ConfigError(f"build_model takes {len(required)} required arguments; expected none or one "
                          "(the configuration dict)")
    models = []
    for config in configs:
        seed_everything(config["seed"])  # gl.fit seeds python, numpy and torch the same way
        model = build_model(dict(config)) if required else build_model()
        if not isinstance(model, nn.Module):
            raise ConfigError(f"build_model returned {type(model).__name__}, not an nn.Module")
        models.append(model)
    shapes = [[(name, tuple(p.shape)) for name, p in m.named_parameters()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise ConfigError("build_model built different architectures for different configurations; a sweep "
                          "stacks identical architectures (sweep the architecture with separate sweeps)")
    if not shapes[0]:
        raise ConfigError("the model has no parameters; nothing to train")
    return models
