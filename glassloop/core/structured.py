"""Structured inputs: a dict, a tuple/list, or a nested structure of tensors as a model's inputs.

The calling rule (the same in `fit`, `evaluate` and `predict`):

- a tensor            -> `model(inputs)`
- a dict              -> `model(**inputs)`   (keys are the forward's argument names)
- a tuple or a list   -> `model(*inputs)`    (items are the forward's positional arguments)

Only the top level decides how the model is called; deeper levels are passed as they are (a dict value that is
a tuple arrives as that tuple). Every leaf is a tensor (or an array, converted as `as_tensor` converts) with one
row per example: batching, shuffling, device moves and DDP sharding apply to every leaf alike.

In memory, a structure is flattened once into its leaves plus a `Layout` that rebuilds each batch from its
leaves, so `TensorBatcher` permutes and splits plain tensors and plain `(inputs, targets)` pairs cost nothing
extra. `StructuredCall(model)` applies the calling rule; the Run uses it in place of the model only when the
inputs may be structured, and it sits outside the module that checkpoints save (it has no state of its own).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from glassloop.errors import DataError


class InputError(DataError):
    """The model's inputs do not fit it: features, dtype, rank, or leaves that disagree in rows."""


def is_structure(value: Any) -> bool:
    """True for a dict, or a non-empty tuple/list whose items are all tensors, arrays or structures.

    A list of Python numbers (or of lists of numbers) is array data, not a structure.
    """
    if isinstance(value, dict):
        return True
    if isinstance(value, (tuple, list)) and value:
        return all(_is_array(item) or is_structure(item) for item in value)
    return False


def _is_array(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


# A layout node: None for a leaf, ("dict", keys, children), ("seq", type, children). Rebuilt in leaf order.
Node = Any


class Layout:
    """How to rebuild `(inputs, targets)` from the flat tuple of leaves (inputs' leaves first, targets last)."""

    def __init__(self, node: Node, paths: list[str]) -> None:
        self.node = node
        self.paths = paths  # "inputs['a']", "inputs[0]", ... then "targets"

    def rebuild(self, leaves: Sequence[torch.Tensor]) -> tuple[Any, torch.Tensor]:
        items = iter(leaves)
        inputs = _build(self.node, items)
        return inputs, next(items)

    def same_as(self, other: Layout) -> bool:
        return self.paths == other.paths and _shape_of(self.node) == _shape_of(other.node)

    def describe(self) -> str:
        return ", ".join(self.paths[:-1])


def unflatten(node: Node, leaves: Sequence[Any]) -> Any:
    """The inverse of `flatten`: the structure of `node` with `leaves` in leaf order."""
    return _build(node, iter(leaves))


def _build(node: Node, items: Any) -> Any:
    if node is None:
        return next(items)
    kind, spec, children = node
    if kind == "dict":
        return {key: _build(child, items) for key, child in zip(spec, children)}
    values = [_build(child, items) for child in children]
    if spec is list:
        return values
    return spec(*values) if hasattr(spec, "_fields") else spec(values)  # a namedtuple takes positional fields


def _shape_of(node: Node) -> Any:
    if node is None:
        return None
    kind, spec, children = node
    return kind, tuple(spec) if kind == "dict" else spec, tuple(_shape_of(c) for c in children)


def flatten(value: Any, path: str, convert: Callable[[Any, str], torch.Tensor]) -> tuple[Node, list[Any], list[str]]:
    """Split a structure into (layout node, leaves, leaf paths); `convert(leaf, path)` makes each leaf a tensor."""
    if isinstance(value, dict):
        if not value:
            raise InputError(f"{path} is an empty dict; expected at least one tensor (one row per example)")
        keys = list(value)
        nodes, leaves, paths = [], [], []
        for key in keys:
            node, sub_leaves, sub_paths = flatten(value[key], f"{path}[{key!r}]", convert)
            nodes.append(node)
            leaves += sub_leaves
            paths += sub_paths
        return ("dict", keys, nodes), leaves, paths
    if isinstance(value, (tuple, list)) and is_structure(value):
        nodes, leaves, paths = [], [], []
        for index, item in enumerate(value):
            node, sub_leaves, sub_paths = flatten(item, f"{path}[{index}]", convert)
            nodes.append(node)
            leaves += sub_leaves
            paths += sub_paths
        return ("seq", type(value), nodes), leaves, paths
    return None, [convert(value, path)], [path]


def check_leaves(leaves: Sequence[torch.Tensor], paths: Sequence[str], name: str) -> int:
    """Every leaf has at least one dimension and all share the row count; return that count."""
    for leaf, path in zip(leaves, paths):
        if leaf.dim() == 0:
            raise InputError(
                f"{name} {path} is a 0-d tensor ({_scalar(leaf)}); expected one row per example (at least 1-d): "
                "use tensor.view(1, -1) for one example, or stack the examples into a (rows, features) tensor")
    rows = [len(leaf) for leaf in leaves]
    if len(set(rows)) > 1:
        counts = ", ".join(f"{path} has {count} rows" for path, count in zip(paths, rows))
        raise InputError(f"{name} leaves disagree in row count: {counts}; every tensor needs one row per example "
                         "(the same first dimension)")
    return rows[0]


def _scalar(leaf: torch.Tensor) -> str:
    return f"value {leaf.item()!r}" if leaf.device.type != "meta" else "a meta tensor"


def structure_layout(inputs: Any, targets: Any, name: str,
                     convert: Callable[[Any, str], torch.Tensor]) -> tuple[tuple[torch.Tensor, ...], Layout]:
    """Leaves of `(inputs, targets)` (inputs' leaves first) and the layout that rebuilds them, rows checked."""
    node, leaves, paths = flatten(inputs, "inputs", convert)
    if node is not None and node[0] == "dict" and not all(isinstance(key, str) for key in node[1]):
        bad = next(key for key in node[1] if not isinstance(key, str))
        raise InputError(f"{name} inputs is a dict with the key {bad!r}; the model is called as model(**inputs), "
                         "so every key must be a string naming a forward() argument")
    leaves.append(convert(targets, f"{name} targets"))
    paths.append("targets")
    check_leaves(leaves, paths, name)
    return tuple(leaves), Layout(node, paths)


class StructuredCall:
    """The calling rule: `model(**inputs)` for a dict, `model(*inputs)` for a tuple/list, else `model(inputs)`.

    A stand-in for the model in the heartbeat (`outputs = model(inputs)`): `train()`/`eval()` reach the model,
    and there is no state of its own, so what checkpoints save (the plain module) is unchanged.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, inputs: Any) -> Any:
        return call_model(self.model, inputs)

    def train(self, mode: bool = True) -> StructuredCall:
        self.model.train(mode)
        return self

    def eval(self) -> StructuredCall:
        self.model.eval()
        return self

    @property
    def training(self) -> bool:
        return bool(self.model.training)

    def __getattr__(self, name: str) -> Any:  # e.g. DDP's no_sync() for gradient accumulation
        if name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)


def call_model(model: Any, inputs: Any) -> Any:
    """One forward under the calling rule (evaluate and predict call the plain module through this)."""
    if isinstance(inputs, torch.Tensor):
        return model(inputs)
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def describe(value: Any) -> str:
    """A short, one-line account of a value: tensors by shape and dtype, containers by their items."""
    if isinstance(value, torch.Tensor):
        return f"a tensor {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, dict):
        items = ", ".join(f"{key!r}: {describe(item)}" for key, item in list(value.items())[:4])
        return f"a dict {{{items}{', ...' if len(value) > 4 else ''}}}"
    if isinstance(value, (tuple, list)):
        items = ", ".join(describe(item) for item in value[:4])
        return f"a {type(value).__name__} of {len(value)} ({items}{', ...' if len(value) > 4 else ''})"
    return f"a {type(value).__name__}"


def first_leaf(inputs: Any) -> torch.Tensor | None:
    """The first tensor in a structure (rows and device of a batch), or None."""
    if isinstance(inputs, torch.Tensor):
        return inputs
    items = inputs.values() if isinstance(inputs, dict) else inputs if isinstance(inputs, (tuple, list)) else ()
    for item in items:
        leaf = first_leaf(item)
        if leaf is not None:
            return leaf
    return None
