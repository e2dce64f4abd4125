"""`evaluate` and `predict` underneath: one pass over data under model.eval() + torch.no_grad().

Inputs may be structured (a dict, tuple or nested structure of tensors): the model is called under the rule of
glassloop/core/structured.py (`model(**inputs)` for a dict, `model(*inputs)` for a tuple or list).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from glassloop.core.batches import TensorBatcher, as_tensor, make_source
from glassloop.core.building import make_loss
from glassloop.core.devices import move_to, resolve_device
from glassloop.core.guards import (
    ModelOutputError,
    ShapeGuard,
    check_first_layer,
    check_model,
    check_pairs,
    explain_first_step,
    input_leaves,
)
from glassloop.core.metrics import make_metrics
from glassloop.core.structured import (
    InputError,
    call_model,
    check_leaves,
    describe,
    flatten,
    is_structure,
    unflatten,
)
from glassloop.errors import ConfigError


def batch_rows(batch: Any) -> int:
    """Rows in a batch: the first dimension of its first tensor (1 when it holds none)."""
    if isinstance(batch, torch.Tensor):
        return len(batch) if batch.dim() else 1
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (tuple, list)) else ()
    return next((batch_rows(item) for item in items if isinstance(item, (torch.Tensor, tuple, list, dict))), 1)


def evaluate_source(model: nn.Module, data: Any, loss: Any, metrics: Any, batch_size: int | None,
                    device: Any, compute_loss: Any) -> dict[str, float]:
    """Mean loss per row over `data` (a `reduction='sum'` loss is divided by the rows), plus metrics."""
    return Evaluation(model, data, loss, metrics, batch_size, device, compute_loss)(model)


class Evaluation:
    """The checked, device-resident validation data and loss, built once; each call is one pass under
    model.eval() + torch.no_grad(). `fit` builds it at the first validation and reuses it every epoch."""

    def __init__(self, model: nn.Module, data: Any, loss: Any, metrics: Any, batch_size: int | None,
                 device: Any, compute_loss: Any, fast_forward: Any = None) -> None:
        check_model(model)
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise ConfigError(f"batch_size={batch_size!r} is not a positive integer")
        if isinstance(data, torch.Tensor):
            raise ConfigError("evaluate needs (inputs, targets), a Dataset or a DataLoader, not a bare tensor; "
                              "use gl.predict(model, inputs) for outputs without targets")
        self.device = resolve_device(device) if device is not None else _model_device(model)
        self.loss_fn = loss if isinstance(loss, ShapeGuard) else ShapeGuard(make_loss(loss))
        self.summed = getattr(self.loss_fn.loss_fn, "reduction", "mean") == "sum"  # a batch's loss is a sum
        self.metric_fns = metrics if isinstance(metrics, dict) and all(callable(f) for f in metrics.values()) \
            else make_metrics(metrics)
        self.compute_loss = compute_loss
        # Validation needs no small batches: in-memory data goes through in chunks of at least 8192 rows.
        self.source = make_source(data, max(batch_size or 0, 8192), False, None, "val")
        if compute_loss is None:
            check_pairs(self.source, model, name="val")
        if hasattr(self.source, "to"):
            self.source = self.source.to(self.device)  # in memory: moved once, not every epoch
        # fit's fused step (glassloop/core/fused.py), for the model family it runs by hand: its forward is the
        # model's own kernels without the module calls, and no layer of that family reads the train/eval mode.
        self.fast_forward = fast_forward if compute_loss is None else None
        self.checked = False  # the first pass goes through the model itself (its one-line input errors)
        # In-memory data in a fixed order: the same row chunks every pass, cut once.
        self.batches = list(self.source.epoch()) if isinstance(self.source, TensorBatcher) and \
            not self.source.shuffle and self.source.layout is None else None

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> dict[str, float]:
        fast = self.fast_forward if self.checked else None
        was_training = model.training
        if fast is None:
            model.eval()
        try:
            total, count, outputs_all, targets_all = 0.0, 0, [], []
            for batch in self.batches if self.batches is not None else self.source.epoch():
                batch = move_to(batch, self.device)
                if self.compute_loss is not None:  # a custom loss is a batch mean: weight it by the batch's rows
                    rows = batch_rows(batch)
                    total += float(self.compute_loss(model, batch)) * rows
                    count += rows
                    continue
                inputs, targets = batch
                if fast is not None and isinstance(inputs, torch.Tensor) and inputs.dim() == 2:
                    outputs = fast(inputs)
                else:
                    outputs = forward(model, inputs, input_leaves(self.source) if count == 0 else None)
                total += float(self.loss_fn(outputs, targets)) * (1 if self.summed else len(targets))
                count += len(targets)
                if self.metric_fns:
                    outputs_all.append(outputs)
                    targets_all.append(targets)
            if count == 0:
                raise ConfigError("evaluation data is empty (no batches); pass at least one example")
            self.checked = True
            result = {"loss": total / count}
            if self.metric_fns and outputs_all:
                outputs, targets = torch.cat(outputs_all), torch.cat(targets_all)
                result.update({name: float(fn(outputs, targets)) for name, fn in self.metric_fns.items()})
        finally:
            if fast is None:
                model.train(was_training)
        return result


def forward(model: nn.Module, inputs: Any, leaves: list[tuple[str, torch.Tensor]] | None = None) -> Any:
    """`call_model`; on a first forward (`leaves` given) a torch error about the inputs becomes one line."""
    if leaves is None:
        return call_model(model, inputs)
    try:
        return call_model(model, inputs)
    except (RuntimeError, IndexError, TypeError) as error:
        explained = explain_first_step(error, leaves)
        if explained is None:
            raise
        raise explained from None


def predict_tensor(model: nn.Module, inputs: Any, batch_size: int | None, device: Any) -> torch.Tensor:
    check_model(model)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size={batch_size!r} is not a positive integer (or None for one pass)")
    if isinstance(inputs, str):
        raise ConfigError(f"inputs is the string {inputs[:40]!r}; pass a tensor or an array of features")
    device = resolve_device(device) if device is not None else _model_device(model)
    node, leaves, paths = flatten(inputs, "inputs", as_tensor) if is_structure(inputs) else \
        (None, [as_tensor(inputs, "inputs")], ["inputs"])
    rows = check_leaves(leaves, paths, "predict")
    size = batch_size or max(rows, 1)
    if node is None:
        check_first_layer(model, leaves[0], "inputs", min(size, rows))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            chunks = zip(*(leaf.split(size) for leaf in leaves))
            outputs = []
            for index, chunk in enumerate(chunks):
                batch = move_to(list(chunk), device)
                output = forward(model, batch[0] if node is None else unflatten(node, batch),
                                 list(zip(paths, leaves)) if index == 0 else None)
                if not isinstance(output, torch.Tensor):
                    raise ModelOutputError(f"the model returned {describe(output)}; gl.predict expects forward() "
                                           "to return one tensor of predictions: return only it, or wrap the model")
                outputs.append(output.cpu())
            if not outputs:
                raise InputError("predict got 0 rows of inputs; pass at least one example")
            return torch.cat(outputs)
    finally:
        model.train(was_training)


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
