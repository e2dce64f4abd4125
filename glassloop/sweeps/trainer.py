"""Many configurations trained at once: `gl.sweep(...)` and `glassloop sweep`.

Small models spend almost all of a step in per-op overhead (reference/performance.md §5), so K runs one after
another waste the machine. Here the K models' weights live in one `[K, P]` tensor and every step is one batched
forward, backward and update for all of them:

- `nn.Sequential` stacks of Linear/ReLU/Tanh/Sigmoid/Identity take the fast path: `baddbmm` forward and a
  hand-written backward (`[K, B, in] x [K, in, out]`), no autograd engine at all.
- Any other architecture goes through `torch.func.functional_call` + `vmap` with autograd (1.3-1.8x slower).

Each configuration keeps what a lone `gl.fit` run would have: its own initial weights (`build_model` after
seeding with its seed), its own data order (a `torch.Generator` seeded with its seed and one `randperm` per
epoch, exactly like `TensorBatcher`), its own learning rate and weight decay (`torch._fused_adam_`, the kernel
`torch.optim.Adam(fused=True)` runs, called once per distinct (lr, weight decay)), its own gradient clipping by
global norm, early stopping and best epoch. A stopped configuration is frozen (no more updates) and ends with its
best epoch's weights.
"""

from __future__ import annotations

import copy
import csv
import inspect
import io
import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glassloop.core.batches import TensorBatcher, make_source
from glassloop.core.building import OPTIMIZERS, make_loss
from glassloop.core.devices import resolve_device, seed_everything
from glassloop.core.guards import check_loss_inputs
from glassloop.core.options import MAX_BATCH_SIZE, MAX_SEED
from glassloop.core.state import History
from glassloop.errors import ConfigError

GRID_KEYS = ("lr", "weight_decay", "momentum", "seed", "clip_grad_norm")
ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity)
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which gl.fit's named "adam" uses
VAL_CHUNK = 8192  # validation rows per forward, as gl.evaluate


# ----------------------------------------------------------------------------------------------- public API
def sweep(build_model: Callable[..., nn.Module], train: Any, val: Any = None,
          grid: Mapping[str, Any] | None = None, *, loss: Any = "mse", optimizer: str = "adam", lr: float = 1e-3,
          weight_decay: float = 0.0, momentum: float = 0.0, epochs: int = 10, batch_size: int | None = 32,
          shuffle: bool = True, clip_grad_norm: float | None = None, patience: int | None = None,
          seed: int = 0, scheduler: Any = None, device: Any = "cpu", threads: Any = "auto",
          verbose: bool = True, mlflow: Any = None, method: str = "auto") -> SweepResult:
    """Train every configuration of `grid` at once and return a `SweepResult`.

    `grid` maps any of lr, weight_decay, momentum, seed, clip_grad_norm to a list of values; the configurations
    are their product (keys not in the grid take the keyword's value). `build_model()` or `build_model(config)`
    is called after seeding with the configuration's seed. `train`/`val` are `(inputs, targets)` tensors.
    `patience` stops a configuration whose val loss has not improved for that many epochs. `mlflow=True`, a
    tracking URI, or a dict (tracking_uri, experiment, run_name) logs a parent run with one child per
    configuration. `method` is "auto", "bmm" (Sequential fast path) or "vmap".
    """
    configs, grid_keys = expand_grid(grid, lr=lr, weight_decay=weight_decay, momentum=momentum, seed=seed,
                                     clip_grad_norm=clip_grad_norm)
    check_options(configs, optimizer, epochs, patience, scheduler, method, val)
    if isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > MAX_BATCH_SIZE:
        raise ConfigError(f"batch_size={batch_size} is larger than {MAX_BATCH_SIZE}; expected a batch size up to the "
                          "number of rows (batch_size=None takes them all at once)")
    dev = resolve_device(device)
    inputs, targets = tensor_pair(train, batch_size, "train")
    val_pair = tensor_pair(val, batch_size, "val") if val is not None else None
    models = build_models(build_model, configs)
    loss_fn = make_loss(loss)
    started = time.perf_counter()
    previous = torch.get_num_threads()
    wanted = thread_count(threads, dev, batch_size or len(inputs), models[0])
    if wanted and wanted != previous:
        torch.set_num_threads(wanted)
    try:
        stack = make_stack(models, method, dev)
        trainer = Trainer(stack, configs, loss_fn, optimizer, (inputs.to(dev), targets.to(dev)),
                          None if val_pair is None else (val_pair[0].to(dev), val_pair[1].to(dev)),
                          epochs, batch_size, shuffle, patience, verbose)
        histories = trainer.run()
    finally:
        if wanted and wanted != previous:
            torch.set_num_threads(previous)
    result = SweepResult(configs, grid_keys, histories, trainer.stopped_epoch, stack, trainer.best,
                         time.perf_counter() - started, has_val=val is not None)
    if mlflow:
        result.mlflow_run_id = log_to_mlflow(result, mlflow, {
            "loss": loss if isinstance(loss, str) else type(loss).__name__, "optimizer": optimizer,
            "epochs": epochs, "batch_size": batch_size, "shuffle": shuffle, "patience": patience,
            "method": stack.method, "configurations": len(configs)})
    if verbose:
        print(result.report())
    return result


class SweepResult:
    """What a sweep leaves: one row and one `History` per configuration, the best weights of each."""

    def __init__(self, configs: list[dict[str, Any]], grid_keys: list[str], histories: list[History],
                 stopped_epoch: list[int | None], stack: Any, best: torch.Tensor, seconds: float,
                 has_val: bool) -> None:
        self.configs = configs
        self.grid_keys = grid_keys
        self.histories = histories
        self.seconds = seconds
        self.method: str = stack.method
        self.mlflow_run_id: str | None = None
        self._stack, self._best = stack, best.detach().cpu()
        monitor = "best_val_loss" if has_val else "best_train_loss"
        self.table: list[dict[str, Any]] = []
        for index, (config, history) in enumerate(zip(configs, histories)):
            last = history.records[-1] if history.records else {}
            self.table.append({
                "index": index, **config, "best_epoch": history.best_epoch, monitor: history.best_val_loss,
                "train_loss": last.get("train_loss"), "val_loss": last.get("val_loss"),
                "epochs_trained": len(history.records), "stopped_epoch": stopped_epoch[index],
            })
        self.monitor = monitor

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def best_index(self) -> int:
        """The configuration with the lowest best val loss (train loss without validation)."""
        scores = [row[self.monitor] if row[self.monitor] is not None else math.inf for row in self.table]
        return min(range(len(scores)), key=scores.__getitem__)

    @property
    def best_config(self) -> dict[str, Any]:
        return dict(self.configs[self.best_index])

    def model(self, index: int) -> nn.Module:
        """Configuration `index`'s trained model: a plain nn.Module holding its best epoch's weights."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"configuration {index} does not exist; the sweep has {len(self)} (0..{len(self) - 1})")
        return self._stack.unstack(self._best[index])

    def summary(self) -> list[dict[str, Any]]:
        """Mean ± std across seeds for every setting of the other grid keys (sample std; 0 for one seed)."""
        keys = [k for k in self.grid_keys if k != "seed"]
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in self.table:
            groups.setdefault(tuple(row[k] for k in keys), []).append(row)
        rows = []
        for setting, members in groups.items():
            summary: dict[str, Any] = dict(zip(keys, setting))
            summary["runs"] = len(members)
            for column in (self.monitor, "train_loss", "best_epoch"):
                values = [float(r[column]) for r in members if r[column] is not None and math.isfinite(r[column])]
                summary[f"{column}_mean"] = statistics.fmean(values) if values else math.nan
                summary[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            summary["stopped"] = sum(r["stopped_epoch"] is not None for r in members)
            rows.append(summary)
        return rows

    def report(self) -> str:
        """The summary as text: one line per setting, then the best configuration."""
        name = self.monitor.replace("best_", "")
        lines = [f"sweep: {len(self)} configurations, {self.method}, {self.seconds:.2f} s"]
        for row in self.summary():
            setting = ", ".join(f"{k}={row[k]}" for k in self.grid_keys if k != "seed") or "all"
            lines.append(f"  {setting}: best {name} {row[self.monitor + '_mean']:.6g} ± "
                         f"{row[self.monitor + '_std']:.2g} over {row['runs']} run{'s' * (row['runs'] > 1)}, "
                         f"best epoch {row['best_epoch_mean'] + 1:.1f}, stopped early {row['stopped']}")
        best = self.table[self.best_index]
        value = best[self.monitor] if best[self.monitor] is not None else math.nan
        lines.append(f"  best: configuration {best['index']} {self.best_config} with {name} {value:.6g} at "
                     f"epoch {(best['best_epoch'] or 0) + 1}")
        return "\n".join(lines)

    def to_csv(self, path: str | Path | None = None) -> str:
        """The table (one row per configuration) as CSV text; written to `path` when given."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.table[0]), lineterminator="\n")
        writer.writeheader()
        for row in self.table:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        text = buffer.getvalue()
        if path is not None:  # atomically: temporary file, fsync, os.replace
            from glassloop.core.checkpoint import write_file

            write_file(text.encode("utf-8"), Path(path))
        return text


# ----------------------------------------------------------------------------------------------- validation
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


def check_options(configs: list[dict[str, Any]], optimizer: Any, epochs: Any, patience: Any, scheduler: Any,
                  method: str, val: Any) -> None:
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise ConfigError(f"sweep optimizer={optimizer!r}; expected a name, one of {', '.join(OPTIMIZERS)} "
                          "(each configuration gets its own copy of that optimizer)")
    if optimizer.lower() != "sgd" and any(c["momentum"] for c in configs):
        raise ConfigError(f"momentum only applies to optimizer='sgd' ({optimizer} has betas); drop momentum or "
                          "use optimizer='sgd'")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs={epochs!r} must be an integer >= 1")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise ConfigError(f"patience={patience!r} must be an integer >= 1 (epochs to wait) or None")
    if patience is not None and val is None:
        raise ConfigError("patience needs validation data to watch; pass val=(inputs, targets) or patience=None")
    if scheduler is not None:
        raise ConfigError(f"scheduler={scheduler!r}: sweeps do not support LR schedulers yet; use gl.fit for a "
                          "scheduled run, or sweep lr with scheduler=None")
    if method not in ("auto", "bmm", "vmap"):
        raise ConfigError(f"method={method!r}; expected 'auto', 'bmm' or 'vmap'")


def tensor_pair(data: Any, batch_size: int | None, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    source = make_source(data, batch_size, False, 0, name)  # same checks (and messages) as gl.fit
    if not isinstance(source, TensorBatcher):
        raise ConfigError(f"sweep {name} data must be an (inputs, targets) pair of tensors or arrays, not "
                          f"{type(data).__name__}; every configuration gathers its own batches from memory")
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


def thread_count(threads: Any, device: torch.device, batch: int, model: nn.Module) -> int | None:
    """1 intra-op thread for small models (performance.md §6-7): tiny GEMMs gain nothing from 2 and collapse
    when a neighbour is busy; GEMM-heavy models keep torch's default."""
    if threads == "auto":
        if device.type != "cpu":
            return None
        return 1 if batch * sum(p.numel() for p in model.parameters()) < 4_000_000 else None
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads={threads!r} must be 'auto', None or an integer >= 1")
    return threads


# ----------------------------------------------------------------------------------------------- stacked models
def make_stack(models: list[nn.Module], method: str, device: torch.device) -> Any:
    if method in ("auto", "bmm") and SequentialStack.supports(models[0]):
        return SequentialStack(models, device)
    if method == "bmm":
        raise ConfigError(f"method='bmm' needs an nn.Sequential of Linear/ReLU/Tanh/Sigmoid layers; got "
                          f"{type(models[0]).__name__}; use method='auto' (vmap for other architectures)")
    return FunctionalStack(models, device)


class SequentialStack:
    """K copies of a Linear/activation `nn.Sequential` as one `[K, P]` weight tensor and a hand-written
    forward/backward: `baddbmm` per Linear, no autograd graph, gradients written straight into `[K, P]`."""

    method = "bmm"

    @staticmethod
    def supports(model: nn.Module) -> bool:
        if not isinstance(model, nn.Sequential) or len(model) == 0:
            return False
        if not all(isinstance(m, (nn.Linear, *ACTIVATIONS)) for m in model):
            return False
        return not list(model.buffers()) and all(p.dtype == torch.float32 for p in model.parameters())

    def __init__(self, models: list[nn.Module], device: torch.device) -> None:
        self.template = copy.deepcopy(models[0]).cpu()
        self.k = len(models)
        self.layers: list[tuple[str, Any]] = []  # ("linear", (weight_slice, bias_slice, in, out)) | ("act", kind)
        offset, slices = 0, []
        for module in models[0]:
            if isinstance(module, nn.Linear):
                w = (offset, offset + module.in_features * module.out_features)
                offset = w[1]
                b = None
                if module.bias is not None:
                    b = (offset, offset + module.out_features)
                    offset = b[1]
                self.layers.append(("linear", (w, b, module.in_features, module.out_features)))
                slices.append((w, b))
            else:
                self.layers.append(("act", type(module)))
        self.size = offset
        rows = []
        for model in models:  # weights stored transposed, [in, out], so the forward is x @ W
            parts = []
            for module in model:
                if isinstance(module, nn.Linear):
                    parts.append(module.weight.detach().t().reshape(-1))
                    if module.bias is not None:
                        parts.append(module.bias.detach().reshape(-1))
            rows.append(torch.cat(parts))
        self.flat = torch.stack(rows).to(device)  # [K, P]: what the optimizer updates
        self.grad = torch.zeros_like(self.flat)
        self.weights = self._views(self.flat)
        self.grads = self._views(self.grad)

    def _views(self, flat: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        views = []
        for kind, spec in self.layers:
            if kind == "linear":
                (w0, w1), b, fan_in, fan_out = spec
                weight = flat[:, w0:w1].view(self.k, fan_in, fan_out)
                bias = flat[:, b[0]:b[1]].view(self.k, 1, fan_out) if b else None
                views.append((weight, bias))
        return views

    def forward(self, inputs: torch.Tensor, keep: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """inputs [K, B, in] -> outputs [K, B, out]; with `keep`, the tensors the backward needs."""
        saved: list[torch.Tensor] = []
        h, index = inputs, 0
        for kind, spec in self.layers:
            if kind == "linear":
                weight, bias = self.weights[index]
                index += 1
                keep and saved.append(h)
                h = torch.bmm(h, weight) if bias is None else torch.baddbmm(bias, h, weight)
            else:
                h = ACTIVATION_FORWARD[spec](h)
                keep and saved.append(h)
        return h, saved

    def forward_shared(self, inputs: torch.Tensor) -> torch.Tensor:
        """The same inputs [N, in] through all K models (validation)."""
        return self.forward(inputs.expand(self.k, *inputs.shape))[0]

    def backward(self, grad_out: torch.Tensor, saved: list[torch.Tensor]) -> torch.Tensor:
        """Fill `self.grad` [K, P] from dLoss/dOutputs; each config's block is its own loss's gradient."""
        g, index, pieces = grad_out, len(self.weights), []
        for position in range(len(self.layers) - 1, -1, -1):
            kind, spec = self.layers[position]
            kept = saved[position]
            if kind == "act":
                g = ACTIVATION_BACKWARD[spec](g, kept)
                continue
            index -= 1
            weight, bias = self.weights[index]
            if bias is not None:
                pieces.append(g.sum(1))  # db, [K, out]
            pieces.append(torch.bmm(kept.transpose(1, 2), g).view(self.k, -1))  # dW = h^T g, per configuration
            if position > 0:
                g = torch.bmm(g, weight.transpose(1, 2))  # dh = g W^T
        # One copy into [K, P]: bmm(out=<strided view>) would leave MKL's batched GEMM for a per-matrix loop.
        return torch.cat(pieces[::-1], dim=1, out=self.grad)

    def unstack(self, row: torch.Tensor) -> nn.Module:
        model = copy.deepcopy(self.template)
        with torch.no_grad():
            for module, (kind, spec) in zip(model, self.layers):
                if kind == "linear":
                    (w0, w1), b, fan_in, fan_out = spec
                    module.weight.copy_(row[w0:w1].view(fan_in, fan_out).t())
                    if b:
                        module.bias.copy_(row[b[0]:b[1]])
        return model

    def train(self, mode: bool = True) -> None:
        pass  # no dropout or batch norm on this path


ACTIVATION_FORWARD: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid, nn.Identity: lambda h: h,
}
# Each backward uses the activation's output, which is what autograd saves too.
ACTIVATION_BACKWARD: dict[type, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    nn.ReLU: lambda g, out: torch.ops.aten.threshold_backward(g, out, 0),
    nn.Tanh: lambda g, out: torch.ops.aten.tanh_backward(g, out),
    nn.Sigmoid: lambda g, out: torch.ops.aten.sigmoid_backward(g, out),
    nn.Identity: lambda g, out: g,
}


class FunctionalStack:
    """Any architecture: `torch.func.functional_call` under `vmap` over a `[K, P]` leaf (autograd backward)."""

    method = "vmap"

    def __init__(self, models: list[nn.Module], device: torch.device) -> None:
        from torch.func import functional_call, stack_module_state

        self.k = len(models)
        self.names, self.shapes, self.bounds = [], [], []
        offset = 0
        for name, p in models[0].named_parameters():
            self.names.append(name)
            self.shapes.append(tuple(p.shape))
            self.bounds.append((offset, offset + p.numel()))
            offset += p.numel()
        self.size = offset
        params, buffers = stack_module_state(models)
        self.flat = torch.cat([params[n].detach().reshape(self.k, -1) for n in self.names], 1).to(device)
        self.flat.requires_grad_(True)
        self.buffers = {n: b.to(device) for n, b in buffers.items()}
        self.grad = torch.zeros_like(self.flat)
        self.flat.grad = self.grad  # autograd accumulates into this same buffer every step
        self.cpu_template = copy.deepcopy(models[0]).cpu()
        self.training = True

        def call(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor):
            return functional_call(self.template_for_call, (params, buffers), (x,))

        self.template_for_call = copy.deepcopy(models[0]).to(device)
        self.call = call

    def _params(self) -> dict[str, torch.Tensor]:
        return {n: self.flat[:, a:b].view(self.k, *s) for n, (a, b), s in zip(self.names, self.bounds, self.shapes)}

    def train(self, mode: bool = True) -> None:
        self.template_for_call.train(mode)

    def _run(self, inputs: torch.Tensor, in_dims: Any) -> torch.Tensor:
        try:
            return torch.vmap(self.call, in_dims=(0, 0, in_dims), randomness="different")(
                self._params(), self.buffers, inputs)
        except RuntimeError as error:
            raise ConfigError(f"this model cannot be stacked with torch.func.vmap ({str(error).splitlines()[0]}); "
                              "layers that update buffers in training (BatchNorm) or use data-dependent control "
                              "flow are not supported by sweeps") from None

    def forward(self, inputs: torch.Tensor, keep: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self._run(inputs, 0), []

    def forward_shared(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._run(inputs, None)

    def unstack(self, row: torch.Tensor) -> nn.Module:
        model = copy.deepcopy(self.cpu_template)
        with torch.no_grad():
            for p, (a, b) in zip(model.parameters(), self.bounds):
                p.copy_(row[a:b].view_as(p))
        return model


# ----------------------------------------------------------------------------------------------- per-config loss
class StackedLoss:
    """A loss per configuration, [K], from outputs [K, B, ...] and targets [K, B, ...]."""

    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn
        self.is_mse = type(loss_fn) is nn.MSELoss and loss_fn.reduction == "mean"
        self.unreduced = None
        # Built-in losses with reduction='none' on [K*B, ...] then a mean per configuration equal their 'mean';
        # class weights make 'mean' a weighted mean, so those fall back to one call per configuration.
        if isinstance(loss_fn, nn.modules.loss._Loss) and getattr(loss_fn, "reduction", None) == "mean" \
                and getattr(loss_fn, "weight", None) is None:
            self.unreduced = copy.copy(loss_fn)
            self.unreduced.reduction = "none"

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        k = outputs.shape[0]
        if self.is_mse:
            return (outputs - targets).square().reshape(k, -1).mean(1)
        if self.unreduced is not None:
            values = self.unreduced(outputs.reshape(-1, *outputs.shape[2:]), targets.reshape(-1, *targets.shape[2:]))
            return values.reshape(k, -1).mean(1)
        return torch.stack([self.loss_fn(outputs[i], targets[i]) for i in range(k)])

    def value_and_grad(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-config losses [K] and d(sum of them)/d outputs: each block is its own config's gradient."""
        if self.is_mse:  # the default loss, by hand: 4 ops instead of a small autograd graph
            diff = outputs - targets
            per_config = diff.square().reshape(diff.shape[0], -1).mean(1)
            return per_config, diff.mul_(2.0 / (diff.numel() // diff.shape[0]))
        with torch.enable_grad():
            leaf = outputs.detach().requires_grad_(True)
            per_config = self(leaf, targets)
            (grad,) = torch.autograd.grad(per_config.sum(), leaf)
        return per_config.detach(), grad


# ----------------------------------------------------------------------------------------------- optimizer
class StackedOptimizer:
    """SGD/Adam/AdamW over the [K, P] weights with each configuration's lr, weight decay and momentum.

    Adam/AdamW call `torch._fused_adam_`/`_fused_adamw_`, the kernel behind `torch.optim.Adam(fused=True)` (what
    gl.fit uses), once per distinct (lr, weight decay) with one row per configuration; stopped configurations
    are left out, so they are frozen exactly. SGD (and Adam where the fused op is missing) is written with
    tensor ops following torch.optim's formulas, with per-configuration [K, 1] columns.
    """

    def __init__(self, name: str, flat: torch.Tensor, grad: torch.Tensor, configs: list[dict[str, Any]],
                 fused: bool = True) -> None:
        self.name = name.lower()
        self.flat, self.grad = flat.detach(), grad  # detached: in-place updates are not part of any graph
        self.k = len(configs)
        self.lrs = [float(c["lr"]) for c in configs]
        self.decays = [float(c["weight_decay"]) for c in configs]
        column = lambda values: torch.tensor(values, dtype=flat.dtype, device=flat.device).unsqueeze(1)  # noqa: E731
        self.lr_column, self.decay_column = column(self.lrs), column(self.decays)
        self.momentum_column = column([float(c["momentum"]) for c in configs])
        self.any_decay, self.any_momentum = any(self.decays), any(c["momentum"] for c in configs)
        self.active = torch.ones(self.k, 1, dtype=flat.dtype, device=flat.device)
        self.steps = 0
        self.fused = fused and self.name != "sgd" and hasattr(torch, f"_fused_{self.name}_")
        self.exp_avg = torch.zeros_like(flat) if self.name != "sgd" else None
        self.exp_avg_sq = torch.zeros_like(flat) if self.name != "sgd" else None
        self.momentum_buffer: torch.Tensor | None = None
        self.step_tensor = torch.zeros((), dtype=torch.float32, device=flat.device)
        self.set_active([True] * self.k)

    def set_active(self, active: list[bool]) -> None:
        """Only active configurations are updated from now on."""
        self.active.copy_(torch.tensor(active, dtype=self.flat.dtype).unsqueeze(1))
        self.groups: list[tuple[float, float, list[list[torch.Tensor]]]] = []
        if self.fused:
            by_setting: dict[tuple[float, float], list[int]] = {}
            for index in (i for i in range(self.k) if active[i]):
                by_setting.setdefault((self.lrs[index], self.decays[index]), []).append(index)
            for (lr, decay), rows in by_setting.items():
                tensors = [[t[i] for i in rows] for t in (self.flat, self.grad, self.exp_avg, self.exp_avg_sq)]
                self.groups.append((lr, decay, tensors))
        self.effective_lr = self.lr_column * self.active

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        if self.fused:
            self.step_tensor += 1  # every active configuration has taken the same number of steps
            op = torch._fused_adam_ if self.name == "adam" else torch._fused_adamw_
            for lr, decay, (params, grads, avgs, avg_sqs) in self.groups:
                op(params, grads, avgs, avg_sqs, [], [self.step_tensor] * len(params), lr=lr, beta1=BETAS[0],
                   beta2=BETAS[1], weight_decay=decay, eps=EPS, amsgrad=False, maximize=False)
            return
        p, g, lr = self.flat, self.grad, self.effective_lr
        if self.name == "adamw" and self.any_decay:
            p.mul_(1 - lr * self.decay_column)  # decoupled decay: p *= 1 - lr * wd
        elif self.any_decay:
            g = g.addcmul(p, self.decay_column)  # L2 in the gradient: g + wd * p
        if self.name == "sgd":
            if self.any_momentum:
                if self.momentum_buffer is None:
                    self.momentum_buffer = g.clone()  # torch: the first step's buffer is the gradient itself
                else:
                    self.momentum_buffer.mul_(self.momentum_column).add_(g)
                g = self.momentum_buffer
            p.addcmul_(g, lr, value=-1.0)
            return
        beta1, beta2 = BETAS
        self.exp_avg.lerp_(g, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        bias1, bias2 = 1 - beta1 ** self.steps, 1 - beta2 ** self.steps
        denom = (self.exp_avg_sq.sqrt() / math.sqrt(bias2)).add_(EPS)
        p.sub_(self.exp_avg / denom * (lr / bias1))


# ----------------------------------------------------------------------------------------------- the loop
class Trainer:
    """The heartbeat for K configurations: gather -> forward -> loss -> backward -> (clip) -> step, then
    validate, record, and stop/freeze configurations whose val loss stopped improving."""

    def __init__(self, stack: Any, configs: list[dict[str, Any]], loss_fn: Any, optimizer: str,
                 train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor] | None,
                 epochs: int, batch_size: int | None, shuffle: bool, patience: int | None, verbose: bool) -> None:
        self.stack, self.configs, self.k = stack, configs, len(configs)
        self.loss = StackedLoss(loss_fn)
        self.optimizer = StackedOptimizer(optimizer, stack.flat, stack.grad, configs)
        self.train_data, self.val_data = train, val
        self.n = len(train[0])
        self.epochs, self.shuffle, self.patience, self.verbose = epochs, shuffle, patience, verbose
        self.batch_size = self.n if batch_size is None else batch_size
        # Exactly TensorBatcher's stream: one generator per configuration, seeded with its seed.
        self.generators = [torch.Generator().manual_seed(c["seed"]) for c in configs]
        clips = [c["clip_grad_norm"] for c in configs]
        self.clip = None if all(c is None for c in clips) else torch.tensor(
            [math.inf if c is None else float(c) for c in clips], dtype=stack.flat.dtype, device=stack.flat.device)
        self.histories = [History() for _ in configs]
        self.active = [True] * self.k
        self.running = torch.ones(self.k, dtype=torch.bool, device=stack.flat.device)  # active, as a tensor
        self.batches_per_epoch = range(math.ceil(self.n / self.batch_size))
        self.stopped_epoch: list[int | None] = [None] * self.k
        self.best = stack.flat.detach().clone()  # each configuration's best epoch's weights
        self.best_value = [math.inf] * self.k
        self.wait = [0] * self.k

    def epoch_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        inputs, targets = self.train_data
        if self.shuffle:
            order = torch.stack([torch.randperm(self.n, generator=g) for g in self.generators]).to(inputs.device)
            inputs, targets = inputs[order], targets[order]  # [K, N, ...]: each config its own permutation
        else:
            inputs = inputs.expand(self.k, *inputs.shape)
            targets = targets.expand(self.k, *targets.shape)
        return list(zip(inputs.split(self.batch_size, 1), targets.split(self.batch_size, 1)))

    def run(self) -> list[History]:
        stack, loss, optimizer = self.stack, self.loss, self.optimizer
        for epoch in range(self.epochs):
            started = time.perf_counter()
            stack.train(True)
            self.recording = list(self.active)  # configurations that train (and get a record) this epoch
            self.last_step: dict[int, int] = {}  # configuration -> the step it went non-finite at
            losses, norms = [], []
            for step, (inputs, targets) in enumerate(self.epoch_batches()):
                if epoch == 0 and step == 0:
                    self.check_shapes(inputs, targets)
                if stack.method == "bmm":
                    outputs, saved = stack.forward(inputs, keep=True)                   # 2. forward
                    per_config, grad_out = loss.value_and_grad(outputs, targets)        # 3. loss, dL/dout
                    grad = stack.backward(grad_out, saved)                              # 4. backward
                else:
                    stack.grad.zero_()                                                  # 1. clear gradients
                    per_config = loss(stack.forward(inputs)[0], targets)
                    per_config.sum().backward()
                    per_config, grad = per_config.detach(), stack.grad
                norm = torch.linalg.vector_norm(grad, dim=1)                            # 5. pre-clip norms [K]
                if self.clip is not None:  # torch's clip_grad_norm_: scale by min(1, max / (norm + 1e-6))
                    grad.mul_((self.clip / (norm + 1e-6)).clamp_(max=1.0).unsqueeze(1))
                bad = torch.isfinite(per_config + norm).logical_not_().logical_and_(self.running)
                if bad.any():  # like gl.fit: never step on NaN/Inf; that configuration stops here
                    self.freeze_nonfinite(bad, per_config, norm, epoch, step)
                optimizer.step()                                                        # 6. update
                losses.append(per_config)
                norms.append(norm)
            train_loss, grad_norm = self.epoch_means(torch.stack(losses), torch.stack(norms))
            val_loss = self.validate() if self.val_data is not None else [None] * self.k
            self.end_epoch(epoch, train_loss, val_loss, grad_norm, time.perf_counter() - started)
            if not any(self.active):
                break
        for history in self.histories:
            if history.stop_reason is None:
                history.stop_reason = f"completed {self.epochs} epochs"
        return self.histories

    def epoch_means(self, losses: torch.Tensor, norms: torch.Tensor) -> tuple[list[float], list[float]]:
        """Per-configuration means of the step losses [S, K] and pre-clip norms; a configuration that went
        non-finite at step s counts losses 0..s and norms 0..s-1, as gl.fit's record does."""
        train_loss = losses.double().mean(0).tolist()
        grad_norm = norms.double().mean(0).tolist()
        for index, step in self.last_step.items():
            train_loss[index] = losses[: step + 1, index].double().mean().item()
            grad_norm[index] = norms[:step, index].double().mean().item() if step else math.nan
        return train_loss, grad_norm

    def freeze_nonfinite(self, bad: torch.Tensor, per_config: torch.Tensor, norm: torch.Tensor, epoch: int,
                         step: int) -> None:
        for index in bad.nonzero().flatten().tolist():
            loss_value, norm_value = per_config[index].item(), norm[index].item()
            what, value = ("loss", loss_value) if not math.isfinite(loss_value) else ("gradient norm", norm_value)
            self.stop(index, epoch, f"non-finite {what} ({value}) at epoch {epoch + 1}, batch {step + 1}, step "
                                    f"{epoch * len(self.batches_per_epoch) + step + 1}; no update was applied. "
                                    "Lower the learning rate ~10x, add clip_grad_norm=1.0, and check the data")
            self.last_step[index] = step
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
        for x, y in zip(inputs.split(VAL_CHUNK), targets.split(VAL_CHUNK)):
            outputs = self.stack.forward_shared(x)
            total += self.loss(outputs, y.expand(self.k, *y.shape)).double() * len(y)
        self.stack.train(True)
        return (total / len(inputs)).tolist()

    def end_epoch(self, epoch: int, train_loss: list[float], val_loss: list[Any], grad_norm: list[float],
                  seconds: float) -> None:
        improved = []
        for index in range(self.k):
            if not self.recording[index]:
                continue
            history = self.histories[index]
            history.append({"epoch": epoch, "train_loss": train_loss[index], "val_loss": val_loss[index],
                            "lr": self.configs[index]["lr"], "grad_norm": grad_norm[index], "seconds": seconds})
            value = val_loss[index] if val_loss[index] is not None else train_loss[index]
            if math.isfinite(value) and value < self.best_value[index]:  # EarlyStopping(min_delta=0) and History
                self.best_value[index], self.wait[index] = value, 0
                improved.append(index)
                continue
            if not self.active[index]:  # went non-finite during this epoch: recorded, and already stopped
                continue
            if not math.isfinite(value):
                self.stop(index, epoch, f"non-finite loss ({value}) at the end of epoch {epoch + 1}; this "
                                        "configuration was frozen and keeps its best epoch's weights")
                continue
            self.wait[index] += 1
            if self.patience is not None and self.wait[index] >= self.patience:
                self.stop(index, epoch, f"early stopping: val_loss has not improved for {self.patience} epochs "
                                        f"since its best {self.best_value[index]:.6g} at epoch "
                                        f"{history.best_epoch + 1}")
        if improved:
            rows = torch.tensor(improved, device=self.best.device)
            self.best[rows] = self.stack.flat.detach()[rows]
        if self.active != self.optimizer_active:
            self.optimizer.set_active(self.active)
        if self.verbose:
            shown = [v for v, a in zip(val_loss if self.val_data is not None else train_loss, self.recording) if a]
            name = "val_loss" if self.val_data is not None else "train_loss"
            finite = sorted(v for v in shown if math.isfinite(v))
            middle = finite[len(finite) // 2] if finite else math.nan
            print(f"epoch {epoch + 1:>4}/{self.epochs}  active {sum(self.active):>3}/{self.k}  {name} median "
                  f"{middle:.6g}  best {min(finite, default=math.nan):.6g}  {seconds:.3f}s")

    @property
    def optimizer_active(self) -> list[bool]:
        return self.optimizer.active.flatten().bool().tolist()

    def stop(self, index: int, epoch: int, reason: str) -> None:
        self.active[index] = False
        self.running[index] = False
        self.stopped_epoch[index] = epoch
        self.histories[index].stop_reason = reason


# ----------------------------------------------------------------------------------------------- MLflow
def log_to_mlflow(result: SweepResult, settings: Any, options: dict[str, Any]) -> str:
    """A parent run (fixed options, summary) and one nested child run per configuration (params, curves).

    Uses MlflowClient so the caller's active run (if any) is left untouched; children carry mlflow.parentRunId
    so the UI nests them. Logged after training, so tracking costs no step time.
    """
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("mlflow is not installed; pip install mlflow, or pass mlflow=None") from None
    if settings is True:
        settings = {}
    elif isinstance(settings, (str, Path)):
        settings = {"tracking_uri": str(settings)}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"mlflow={settings!r}; expected True, a tracking URI, or a dict with tracking_uri, "
                          "experiment, run_name")
    client = MlflowClient(tracking_uri=settings.get("tracking_uri"))
    experiment_name = settings.get("experiment", "glassloop-sweep")
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(experiment_name)
    now = int(time.time() * 1000)
    parent = client.create_run(experiment_id, run_name=settings.get("run_name", "sweep"),
                               tags={"glassloop.kind": "sweep"})
    parent_id = parent.info.run_id
    best = result.table[result.best_index]
    client.log_batch(parent_id, params=[Param(k, str(v)) for k, v in options.items()]
                     + [Param("grid_keys", ",".join(result.grid_keys) or "-")],
                     metrics=[Metric(f"best_{result.monitor.removeprefix('best_')}", float(best[result.monitor]),
                                     now, 0), Metric("seconds", result.seconds, now, 0)])
    for index, (config, history) in enumerate(zip(result.configs, result.histories)):
        child = client.create_run(experiment_id, run_name=f"config-{index}",
                                  tags={"mlflow.parentRunId": parent_id, "glassloop.kind": "sweep-config"})
        metrics = [Metric(key, float(record[key]), now, record["epoch"]) for record in history.records
                   for key in ("train_loss", "val_loss", "grad_norm")
                   if record.get(key) is not None and math.isfinite(record[key])]
        row = result.table[index]
        if row[result.monitor] is not None:
            metrics.append(Metric(result.monitor, float(row[result.monitor]), now, 0))
        client.log_batch(child.info.run_id, metrics=metrics,
                         params=[Param(k, str(v)) for k, v in config.items()] + [Param("index", str(index))])
        client.set_terminated(child.info.run_id)
    client.set_terminated(parent_id)
    return parent_id
