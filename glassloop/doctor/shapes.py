"""Tensor shapes where the script makes them visible: `torch.randn(n, 3)` -> (None, 3), `x[:, 0]` -> (None,),
`model(x)` for a visible Linear/Sequential -> (None, out). A dimension is an int or None (unknown size); the
whole shape is None when anything on the way is not visible.
"""

from __future__ import annotations

import ast

from glassloop.doctor.models import CREATORS, SAME_SHAPE, Shape, Values
from glassloop.doctor.symbols import callee, const, dotted, kwarg
from glassloop.doctor.values import LoopItem

REDUCTIONS = {"sum", "mean", "std", "var", "amax", "amin", "norm", "prod", "logsumexp", "nansum", "nanmean"}


def _ints(nodes: list[ast.AST]) -> Shape | None:
    if len(nodes) == 1 and isinstance(nodes[0], ast.Tuple | ast.List):
        nodes = list(nodes[0].elts)
    if any(isinstance(n, ast.Starred) for n in nodes):
        return None
    return tuple(v if isinstance(v := const(n), int) and not isinstance(v, bool) else None for n in nodes)


def _broadcast(a: Shape, b: Shape) -> Shape:
    width = max(len(a), len(b))
    a, b = (1,) * (width - len(a)) + a, (1,) * (width - len(b)) + b
    return tuple(x if x == y or y == 1 else y if x == 1 else None for x, y in zip(a, b))


def _dim_arg(call: ast.Call, ndim: int) -> int | None:
    node = kwarg(call, "dim") or (call.args[0] if call.args else None)
    value = const(node)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return value + ndim if value < 0 else value


def shape(values: Values, node: ast.AST | None, at: ast.AST, depth: int = 8) -> Shape | None:
    if node is None or depth == 0:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return ()
    if isinstance(node, LoopItem):
        return shape(values, values.src.loop_source(node), node, depth - 1)
    if isinstance(node, ast.Name | ast.Attribute):
        value = values.src.value_of(dotted(node) or "", at)
        return shape(values, value, value, depth - 1) if value is not None else None
    if isinstance(node, ast.UnaryOp):
        return shape(values, node.operand, at, depth - 1)
    if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.MatMult):
        left, right = shape(values, node.left, at, depth - 1), shape(values, node.right, at, depth - 1)
        return _broadcast(left, right) if left is not None and right is not None else None
    if isinstance(node, ast.Subscript):
        return _subscript(values, node, at, depth)
    if isinstance(node, ast.Call):
        return _call(values, node, at, depth)
    return None


def _subscript(values: Values, node: ast.Subscript, at: ast.AST, depth: int) -> Shape | None:
    base = shape(values, node.value, at, depth - 1)
    if base is None:
        return None
    index = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    if len(index) > len(base) or any(not isinstance(i, ast.Slice) and not isinstance(const(i), int) for i in index):
        return None   # a tensor or name index: the shape is not visible
    out: list[int | None] = []
    for dim, item in zip(base, index):
        if isinstance(item, ast.Slice):
            low, high = const(item.lower), const(item.upper)
            out.append(high - (low or 0) if isinstance(high, int) and high >= 0 and (low is None or isinstance(
                low, int)) and item.step is None else (dim if item.lower is None and item.upper is None else None))
    return tuple(out) + base[len(index):]


def _call(values: Values, node: ast.Call, at: ast.AST, depth: int) -> Shape | None:
    name = callee(node)
    func = node.func
    full = dotted(func) or ""
    if full.startswith(("torch.", "np.", "numpy.")) or isinstance(func, ast.Name):
        if name in CREATORS:
            return _ints(list(node.args) if name != "full" else node.args[:1])
        if name == "randint":
            size = kwarg(node, "size") or (node.args[-1] if node.args else None)
            return _ints([size]) if isinstance(size, ast.Tuple | ast.List) else None
        if name in ("zeros_like", "ones_like", "randn_like", "rand_like") or (
                name in SAME_SHAPE and full.split(".")[0] in ("torch", "F")) and node.args:
            return shape(values, node.args[0], at, depth - 1)
    model = values.model_call(node, at)
    if model is node:
        return _model_output(values, node, at, depth)
    if not isinstance(func, ast.Attribute) or full.split(".")[0] in ("torch", "F", "np", "nn"):
        return None
    base = shape(values, func.value, at, depth - 1)
    if base is None:
        return None
    return _method(node, name, base)


def _method(node: ast.Call, name: str, base: Shape) -> Shape | None:
    if name in SAME_SHAPE:
        return base
    if name in REDUCTIONS or name in ("max", "min", "argmax", "argmin"):
        if not node.args and kwarg(node, "dim") is None:
            return ()
        dim = _dim_arg(node, len(base))
        if dim is None or dim >= len(base):
            return None
        if const(kwarg(node, "keepdim")) is True:
            return base[:dim] + (1,) + base[dim + 1:]
        return base[:dim] + base[dim + 1:] if name not in ("max", "min") else None
    if name == "unsqueeze":
        dim = _dim_arg(node, len(base) + 1)
        return base[:dim] + (1,) + base[dim:] if dim is not None else None
    if name == "squeeze":
        dim = _dim_arg(node, len(base))
        if dim is None or dim >= len(base):
            return tuple(d for d in base if d != 1) if all(d is not None for d in base) else None
        return base[:dim] + base[dim + 1:] if base[dim] in (1, None) else base
    if name in ("view", "reshape"):
        dims = _ints(list(node.args))
        return tuple(None if d == -1 else d for d in dims) if dims is not None else None
    if name == "flatten" and not node.args:
        return (None,)
    return None


def _model_output(values: Values, call: ast.Call, at: ast.AST, depth: int) -> Shape | None:
    """A visible Linear/Sequential(Linear ...) keeps the input's rank and ends in its last out_features."""
    ctor = values.built(call)
    layers = values.layers(ctor) if ctor is not None else None
    if not layers or callee(ctor) not in ("Sequential", "Linear") or not call.args:
        return None
    if any(callee(layer) not in ("Linear", "ReLU", "Tanh", "Sigmoid", "GELU", "LeakyReLU", "Dropout", "SiLU",
                                 "ELU", "Softplus", "BatchNorm1d", "LayerNorm", "Identity") for layer in layers):
        return None
    base = shape(values, call.args[0], at, depth - 1)
    out = values.out_features(ctor)
    if base is None or out is None or not base:
        return None
    return base[:-1] + (out,)
