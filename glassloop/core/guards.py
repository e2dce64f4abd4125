"""Guards checked once, before or at the first step: shapes a loss would silently broadcast, a scalar loss,
dtypes, and an optimizer that owns the model."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from glassloop.core.batches import TensorBatcher
from glassloop.errors import ConfigError

ELEMENTWISE_LOSSES = (nn.MSELoss, nn.L1Loss, nn.HuberLoss, nn.SmoothL1Loss, nn.BCELoss, nn.BCEWithLogitsLoss)
ELEMENTWISE_FUNCTIONS = {"mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
                         "binary_cross_entropy_with_logits"}


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


def check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model is a {type(model).__name__}, not a torch.nn.Module; build it with nn.Sequential "
                          "or an nn.Module subclass")
