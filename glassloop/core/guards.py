"""Guards checked once, before or at the first step: shapes a loss would silently broadcast, a scalar loss with a
graph, targets and outputs in the loss's range, inputs that fit the model, dtypes, and an optimizer that owns the
model. Each check runs on the data once (the whole in-memory targets, or the first batch) and then costs nothing.

The misuse table, one error class each (every message: the received value, what was expected, the fix):

- `InputError` (glassloop/core/structured.py): wrong number of input features, int/bool/complex inputs into
  float layers, 0-d tensors, structured leaves with different row counts, batches that are not pairs;
- `TargetError`: cross-entropy classes out of range, float cross-entropy targets that are not probabilities,
  BCE / BCE-with-logits targets outside [0, 1];
- `ModelOutputError`: a model that returns a tuple or dict to a torch loss, `loss="bce"` on raw scores;
- `LossError`: a loss without a graph (detached, `.item()` re-wrapped, computed under no_grad);
- `DeviceError` (glassloop/core/devices.py): `device="meta"`, unavailable accelerators (`"xpu"`, ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from glassloop.core.batches import TensorBatcher
from glassloop.core.structured import InputError, describe
from glassloop.errors import ConfigError, DataError, GlassloopError, one_line

ELEMENTWISE_LOSSES = (nn.MSELoss, nn.L1Loss, nn.HuberLoss, nn.SmoothL1Loss, nn.BCELoss, nn.BCEWithLogitsLoss)
ELEMENTWISE_FUNCTIONS = {"mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
                         "binary_cross_entropy_with_logits"}
TORCH_LOSS_FUNCTIONS = ELEMENTWISE_FUNCTIONS | {"cross_entropy", "nll_loss", "kl_div"}


class TargetError(DataError):
    """Targets outside what the loss accepts (class indices, probabilities, 0/1 labels)."""


class ModelOutputError(ConfigError):
    """What the model returns does not fit the loss (a tuple, a dict, raw scores where probabilities belong)."""


class LossError(ConfigError):
    """The loss cannot train the model: not a scalar tensor, or no graph back to the parameters."""


class ShapeGuard:
    """Checks the first (outputs, targets) pair a loss sees and the loss it returns; then it is a plain call.

    Training and validation each get their own guard: validation data can be malformed on its own.
    """

    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn
        self.checked = False
        self.all_targets: torch.Tensor | None = None  # in-memory training targets: range checks see every row

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.checked:
            return self.loss_fn(outputs, targets)
        check_outputs(self.loss_fn, outputs)
        check_loss_inputs(self.loss_fn, outputs, targets, self.all_targets)
        loss = self.loss_fn(outputs, targets)
        what = f"loss {loss_name(self.loss_fn)}"
        check_scalar_loss(loss, what)
        check_loss_graph(loss, what)
        self.checked = True
        self.all_targets = None  # only needed once
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
            check_loss_graph(loss, f"compute_loss {self.__name__}")
            self.checked = True
        return loss


def loss_name(loss_fn: Any) -> str:
    return getattr(loss_fn, "__name__", None) or type(loss_fn).__name__


def check_scalar_loss(loss: Any, what: str) -> None:
    if not isinstance(loss, torch.Tensor):
        raise LossError(f"{what} returned {type(loss).__name__} {loss!r}, not a tensor; return the loss tensor "
                          "itself (not loss.item()) so backward() can run")
    if loss.dim() != 0:
        raise LossError(f"{what} returned a loss of shape {tuple(loss.shape)}; backward() needs one scalar: use "
                        "reduction='mean' (the default) or call .mean() on the per-sample losses")


def check_loss_graph(loss: torch.Tensor, what: str) -> None:
    """With grad mode on (training), a loss without grad_fn would make backward() fail or train nothing."""
    if torch.is_grad_enabled() and not loss.requires_grad:
        raise LossError(f"{what} returned a tensor with no grad_fn (requires_grad=False, value {loss.item():.6g}), "
                        "so backward() cannot reach the model's parameters; expected the loss computed from the "
                        "model's outputs: remove .detach()/.item()/torch.tensor(...) around it and any torch.no_grad()")


def check_outputs(loss_fn: Any, outputs: Any) -> None:
    """torch's losses take one tensor: a tuple or dict from forward() would fail deep inside torch."""
    if isinstance(outputs, torch.Tensor):
        return
    if not (isinstance(loss_fn, nn.modules.loss._Loss) or getattr(loss_fn, "__name__", "") in TORCH_LOSS_FUNCTIONS):
        return  # a callable of the user's own may take any outputs
    raise ModelOutputError(
        f"the model returned {describe(outputs)} but loss {loss_name(loss_fn)} takes one tensor; expected forward() "
        "to return the predictions tensor: return only it (e.g. `return out`, not `return out, hidden`), wrap the "
        "model to pick it, or pass compute_loss=fn(model, batch)")



def check_loss_inputs(loss_fn: Any, outputs: Any, targets: Any, all_targets: torch.Tensor | None = None) -> None:
    """Raise where the loss would broadcast, misread or reject its inputs instead of failing clearly.

    `all_targets` (the whole in-memory training targets) widens the value checks from this batch to every row.
    """
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
    check_loss_values(loss_fn, outputs, targets, targets if all_targets is None else all_targets)


def check_loss_values(loss_fn: Any, outputs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor) -> None:
    """Values a loss would reject with a raw torch error, or accept and train on garbage (BCE targets of 5.0)."""
    name, label = getattr(loss_fn, "__name__", ""), loss_name(loss_fn)
    if isinstance(loss_fn, nn.BCELoss) or name == "binary_cross_entropy":
        low, high = _range(outputs)
        if low < 0 or high > 1:
            raise ModelOutputError(
                f"loss {label} (loss='bce') needs probabilities in [0, 1] but the model's outputs range from "
                f"{low:.4g} to {high:.4g} (raw scores); use loss='bce_with_logits' on raw outputs (numerically "
                "safer), or end the model with nn.Sigmoid()")
    binary = isinstance(loss_fn, (nn.BCELoss, nn.BCEWithLogitsLoss)) or name.startswith("binary_cross_entropy")
    if binary and rows.dtype.is_floating_point:
        low, high = _range(rows)
        if low < 0 or high > 1:
            raise TargetError(
                f"loss {label} needs targets in [0, 1] (0/1 labels or probabilities) but the targets range from "
                f"{low:.4g} to {high:.4g}; use 0/1 labels, rescale the targets into [0, 1], or use loss='mse' for a "
                "numeric target (or loss='cross_entropy' for class indices)")
    if isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)) or name in ("cross_entropy", "nll_loss"):
        classes = outputs.shape[1] if outputs.dim() >= 2 else None
        if not targets.dtype.is_floating_point:
            _check_class_indices(label, rows, classes, getattr(loss_fn, "ignore_index", -100))
        elif outputs.dim() >= 2:
            _check_probabilities(label, outputs, targets, rows)


def _check_class_indices(label: str, rows: torch.Tensor, classes: int | None, ignore_index: int) -> None:
    valid = rows[rows != ignore_index]
    if not valid.numel():
        return
    low, high = (int(v) for v in _range(valid))
    if low < 0 or (classes is not None and high >= classes):
        received = low if low < 0 else high
        expected = f"[0, {classes})" if classes is not None else "0 or more"
        raise TargetError(
            f"loss {label} got class index {received} but the model has {classes} outputs, so class indices must be "
            f"in {expected}; renumber the labels 0..C-1, or give the model one output per class "
            f"(nn.Linear(..., {max(high + 1, classes or 0)}) for labels up to {high})")


def _check_probabilities(label: str, outputs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor) -> None:
    if targets.shape != outputs.shape:
        raise TargetError(
            f"loss {label} got float targets of shape {tuple(targets.shape)} with outputs {tuple(outputs.shape)}; "
            "float targets are read as per-class probabilities of the outputs' shape. Class labels: pass integer "
            "class indices of shape (N,) with targets.view(-1).long()")
    low, high = _range(rows)
    worst = float((rows.sum(1) - 1).abs().max()) if rows.dim() >= 2 and rows.numel() else 0.0
    if low < 0 or high > 1 or worst > 1e-3:
        raise TargetError(
            f"loss {label} got float targets that are not probabilities (values from {low:.4g} to {high:.4g}, rows "
            f"summing to 1 +/- {worst:.3g}); expected per-class probabilities in [0, 1] that sum to 1 per row: pass "
            "class indices with targets.argmax(1) (or .long()), or normalise the rows")


def _range(tensor: torch.Tensor) -> tuple[float, float]:
    low, high = torch.aminmax(tensor.detach().float() if not tensor.dtype.is_floating_point else tensor.detach())
    return float(low), float(high)


def input_leaves(source: Any) -> list[tuple[str, torch.Tensor]]:
    """(path, tensor) of each input leaf of in-memory data; empty for a streamed source."""
    if not isinstance(source, TensorBatcher):
        return []
    paths = source.layout.paths[:-1] if source.layout is not None else ["inputs"]
    return list(zip(paths, source.tensors[:-1]))


def check_pairs(source: Any, model: nn.Module, loss_guard: ShapeGuard | None = None, name: str = "train") -> None:
    """Inputs that fit the model, checked before the first step: float dtype, real values, the first layer.

    In memory every leaf is checked now and `loss_guard` gets the whole targets (its range checks see every
    row); a streamed source checks that its first batch of each epoch is an (inputs, targets) pair.
    """
    if not isinstance(source, TensorBatcher):
        if hasattr(source, "expect_pairs"):
            source.expect_pairs = True
        return
    parameter = next(model.parameters(), None)
    for path, leaf in input_leaves(source):
        what = f"{name} {path}"
        if parameter is not None and leaf.dtype.is_floating_point and leaf.dtype != parameter.dtype:
            raise ConfigError(f"{what} are {leaf.dtype} but the model's parameters are {parameter.dtype}; "
                              f"convert one of them: inputs.to({parameter.dtype}) or model.to({leaf.dtype})")
        if parameter is not None and leaf.is_complex() and not parameter.is_complex():
            raise InputError(f"{what} are {leaf.dtype} but the model's parameters are real ({parameter.dtype}); "
                             "expected real features: split them with torch.view_as_real(inputs).flatten(1), or "
                             "use inputs.abs()")
    if source.layout is None:
        check_first_layer(model, source.tensors[0], f"{name} inputs", min(source.batch_size, source.n))
    if loss_guard is not None:
        loss_guard.all_targets = source.tensors[-1]


def visible_first_layer(model: nn.Module) -> nn.Module | None:
    """The layer plain inputs meet first, where that is certain: through nn.Sequential (past dropout/identity)."""
    layer: nn.Module | None = model
    while isinstance(layer, nn.Sequential):
        layer = next((child for child in layer if not isinstance(child, (nn.Dropout, nn.Identity))), None)
    return layer


def check_first_layer(model: nn.Module, inputs: torch.Tensor, what: str, batch_rows: int | None = None) -> None:
    """Plain inputs against the first nn.Linear / nn.Embedding when the model shows it (nn.Sequential).

    `batch_rows`: rows per forward; 1-d inputs one row at a time are single examples, which nn.Linear takes.
    """
    layer = visible_first_layer(model)
    if isinstance(layer, nn.Embedding) and inputs.dtype.is_floating_point:
        raise InputError(f"{what} are {inputs.dtype} but the model's first layer {layer} takes integer ids; "
                         "expected int64 indices in [0, num_embeddings): use inputs.long()")
    if not isinstance(layer, nn.Linear) or isinstance(layer.weight, nn.parameter.UninitializedParameter):
        return
    if not (inputs.dtype.is_floating_point or inputs.is_complex()):
        raise InputError(f"{what} are {inputs.dtype} but the model's first layer {layer} computes in "
                         f"{layer.weight.dtype}; expected float features: use inputs.float() (class labels or "
                         "token ids go into an nn.Embedding first)")
    expected, out = layer.in_features, layer.out_features
    if inputs.dim() == 1 and batch_rows == 1:
        return
    if inputs.dim() == 1:
        fix = "inputs.unsqueeze(1)" if expected == 1 else f"one row of {expected} features per example"
        raise InputError(f"{what} are 1-d (shape {tuple(inputs.shape)}), so {layer} would read a whole batch as "
                         f"one example; expected shape (rows, {expected}): use {fix}")
    if inputs.shape[-1] != expected:
        raise InputError(f"{what} have {inputs.shape[-1]} features per row (shape {tuple(inputs.shape)}) but the "
                         f"model's first layer {layer} expects {expected}; pass inputs with {expected} columns, or "
                         f"build that layer as nn.Linear({inputs.shape[-1]}, {out})")


def check_like_train(train: Any, val: Any) -> None:
    """Validation rows must look like training rows (else the error comes after a whole epoch of training)."""
    if not (isinstance(train, TensorBatcher) and isinstance(val, TensorBatcher)):
        return
    if (train.layout is None) != (val.layout is None) or (train.layout and not train.layout.same_as(val.layout)):
        shown = [f"({source.layout.describe()})" if source.layout else "one tensor" for source in (train, val)]
        raise ConfigError(f"val inputs are {shown[1]} but train inputs are {shown[0]}; validation data must have "
                          "the same structure as training data")
    paths = train.layout.paths if train.layout else ["inputs", "targets"]
    for path, a, b in zip(paths, train.tensors, val.tensors):
        if a.shape[1:] != b.shape[1:]:
            raise ConfigError(f"val {path} have rows of shape {tuple(b.shape[1:])} but train {path} have "
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


MATMUL = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")
DTYPE_WORDS = ("same dtype", "Input type (", "expected scalar type", "not implemented for '")
NON_FLOAT = re.compile(r"\b(Long|Int|Short|Byte|Char|Bool|ComplexFloat|ComplexDouble|long int|bool)\b")


def explain_first_step(error: BaseException, leaves: Sequence[tuple[str, torch.Tensor]] = ()) -> GlassloopError | None:
    """The torch error of a first forward, as one line that says which inputs do not fit and how to fix them.

    None when the error is not about the inputs (it is then raised as it is). `leaves` (`input_leaves(source)`)
    let the message name the received inputs; without them the torch message alone decides.
    """
    if isinstance(error, GlassloopError) or not isinstance(error, (RuntimeError, IndexError, TypeError)):
        return None
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    said = f"(torch: {text[:160]})"
    if isinstance(error, TypeError):
        return _explain_call(text, leaves)
    found = MATMUL.search(text)
    if found:
        got, expected = int(found.group(2)), int(found.group(3))
        if leaves and got not in {leaf.shape[-1] for _, leaf in leaves if leaf.dim()}:
            return None  # the inputs are not at fault: two layers of the model disagree
        return InputError(one_line(
            f"the inputs have {got} features per row but the model's layer expects {expected} {said}; pass inputs "
            f"with {expected} columns, or build that layer with in_features={got}"))
    if any(word in text for word in DTYPE_WORDS):
        bad = [f"{path} ({str(leaf.dtype).replace('torch.', '')})" for path, leaf in leaves
               if not leaf.dtype.is_floating_point]
        word = NON_FLOAT.search(text)
        if not bad and (leaves or word is None):
            return None
        received = ", ".join(bad) if bad else f"{word.group(1)} inputs"  # type: ignore[union-attr]
        return InputError(one_line(
            f"the model got {received} but computes in floating point {said}; expected float features: use "
            "inputs.float() (class labels or token ids go into an nn.Embedding first)"))
    if "'indices' to have one of the following scalar types" in text:
        return InputError(one_line(f"an nn.Embedding in the model got float inputs {said}; expected int64 ids: "
                                   "use inputs.long()"))
    if isinstance(error, IndexError) and "index out of range in self" in text:
        ids = [int(leaf.max()) for _, leaf in leaves if leaf.numel() and not leaf.dtype.is_floating_point]
        received = f" (the largest id is {max(ids)})" if ids else ""
        return InputError(one_line(
            f"an nn.Embedding in the model got an id outside its table{received} {said}; expected ids in "
            "[0, num_embeddings): build nn.Embedding(largest_id + 1, dim), or renumber the ids"))
    return None


def _explain_call(text: str, leaves: Sequence[tuple[str, torch.Tensor]]) -> GlassloopError | None:
    """A forward() that does not take the structured inputs the way the calling rule passes them."""
    structured = [path for path, _ in leaves if path != "inputs"]
    signature = ("unexpected keyword argument" in text or "positional argument" in text) and "forward()" in text
    if not (structured and signature):
        return None
    return InputError(one_line(
        f"the model was called with structured inputs ({', '.join(structured)}) as model(**inputs) for a dict or "
        f"model(*inputs) for a tuple/list, and forward() refused them ({text[:160]}); expected forward() to take "
        "those arguments: name the dict keys after forward()'s arguments, order the tuple as its parameters, or "
        "pass compute_loss=fn(model, batch)"))
