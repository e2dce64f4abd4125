"""What a value is: the model that produced it, the model's layers and last activation, a tensor's shape, the
dtype a target evidently has. Built on `values.Source`, so it follows names across functions and classes.
Every answer may be None ("not visible"); rules stay silent then.
"""

from __future__ import annotations

import ast

from glassloop.doctor.symbols import MODEL_WRAPPERS, Symbols, callee, const, dotted, kwarg
from glassloop.doctor.values import LoopItem, Source

TRANSPARENT = {"squeeze", "unsqueeze", "view", "reshape", "flatten", "float", "to", "contiguous", "double",
               "cpu", "cuda", "clone", "long", "type", "view_as"}
ACTIVATIONS = {"softmax": "softmax", "log_softmax": "log_softmax", "logsoftmax": "log_softmax", "sigmoid": "sigmoid"}
ACTIVATION_LAYERS = {"Softmax": "softmax", "LogSoftmax": "log_softmax", "Sigmoid": "sigmoid"}
MODE_LAYERS = ("Dropout", "BatchNorm", "AlphaDropout", "FeatureAlphaDropout", "SyncBatchNorm")
SAME_SHAPE = TRANSPARENT - {"squeeze", "unsqueeze", "view", "reshape", "flatten", "view_as"} | {
    "abs", "pow", "exp", "log", "sigmoid", "tanh", "relu", "sqrt", "neg", "clamp", "detach", "softmax",
    "log_softmax", "sin", "cos", "square", "int", "bool", "requires_grad_"}
CREATORS = {"randn", "rand", "zeros", "ones", "empty", "full"}
Shape = tuple[int | None, ...]


class Values:
    def __init__(self, source: Source, symbols: Symbols) -> None:
        self.src, self.symbols = source, symbols

    # ---- models ------------------------------------------------------------------------------------------
    def constructor(self, node: ast.AST | None, at: ast.AST | None = None, depth: int = 6) -> ast.Call | None:
        """The call that built the model `node` names: `Net()`, `nn.Sequential(...)`, through wrappers/returns."""
        for _ in range(depth):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                    "to", "cuda", "cpu", "float", "double", "train", "eval", "requires_grad_"):
                node = node.func.value
                continue
            if isinstance(node, ast.Name | ast.Attribute):
                value = self.src.value_of(dotted(node) or "", at if at is not None else node)
                if value is None:
                    return None
                node = at = value
                continue
            if not isinstance(node, ast.Call):
                return None
            name = callee(node)
            if name in MODEL_WRAPPERS and node.args:
                node = at = node.args[0]
                continue
            if name in self.symbols.functions and name not in self.symbols.module_classes:
                returns = [r.value for r in ast.walk(self.symbols.functions[name])
                           if isinstance(r, ast.Return) and r.value is not None]
                if len(returns) != 1:
                    return None
                node = at = returns[0]
                continue
            kind, _ = self.symbols.value_kind(node)
            return node if kind == "model" else None
        return None

    def model_call(self, node: ast.AST | None, at: ast.AST) -> ast.Call | None:
        """The model call whose output `node` is (through names and shape-only calls), e.g. `net(x)`."""
        for _ in range(5):
            node = strip(node)
            if isinstance(node, ast.Call):
                if callee(node) in ("parameters", "state_dict", "named_parameters"):
                    return None
                target = node.func.value if callee(node) == "forward" and isinstance(node.func, ast.Attribute) \
                    else node.func
                if self.symbols.kind(dotted(target)) == "model" or self.constructor(target, node) is not None:
                    return node
                return None
            if isinstance(node, ast.Name | ast.Attribute):
                value = self.src.value_of(dotted(node) or "", at)
                if value is None:
                    return None
                at = node = value
            else:
                return None
        return None

    def model_of(self, node: ast.AST | None, at: ast.AST) -> str | None:
        call = self.model_call(node, at)
        if call is None:
            return None
        target = call.func.value if callee(call) == "forward" and isinstance(call.func, ast.Attribute) else call.func
        return dotted(target)

    def built(self, call: ast.Call) -> ast.Call | None:
        """Constructor of the model called in `call` (`net(x)` -> `Net()`)."""
        target = call.func.value if callee(call) == "forward" and isinstance(call.func, ast.Attribute) else call.func
        if isinstance(target, ast.Call):
            return target if self.symbols.value_kind(target)[0] == "model" else None
        return self.constructor(target, call)

    def layers(self, ctor: ast.Call | None, depth: int = 3) -> list[ast.Call] | None:
        """Layer constructor calls in source order (Sequential args or the class body); None if not visible."""
        if ctor is None or depth == 0:
            return None
        name = callee(ctor)
        if name == "Sequential":
            out: list[ast.Call] = []
            for arg in ctor.args:
                if isinstance(arg, ast.Call):
                    out += self.layers(arg, depth - 1) or [arg]
            return out
        if name in self.symbols.class_defs:
            calls = sorted((n for n in ast.walk(self.symbols.class_defs[name]) if isinstance(n, ast.Call)),
                           key=lambda n: (n.lineno, n.col_offset))
            out = []
            for call in calls:
                nested = self.layers(call, depth - 1) if callee(call) in self.symbols.class_defs else None
                out += nested if nested is not None else [call]
            return out
        if (dotted(ctor.func) or "").split(".")[0] in ("nn", "torch") or name in ("Linear", "Conv2d"):
            return [ctor]
        return None

    def has_mode_layers(self, ctor: ast.Call | None) -> bool | None:
        """True when the model has dropout or batch-norm (train/eval matters), None when it is not visible."""
        layers = self.layers(ctor)
        if layers is None:
            return None
        return any(callee(c).startswith(MODE_LAYERS) or callee(c) in ("dropout", "batch_norm") for c in layers)

    def out_features(self, ctor: ast.Call | None) -> int | None:
        linear = [c for c in self.layers(ctor) or [] if callee(c) == "Linear"]
        if not linear:
            return None
        last = linear[-1]
        value = const(last.args[1]) if len(last.args) > 1 else const(kwarg(last, "out_features"))
        return value if isinstance(value, int) else None

    def model_activation(self, ctor: ast.Call | None) -> str | None:
        if ctor is None:
            return None
        if callee(ctor) == "Sequential" and ctor.args:
            last = ctor.args[-1]
            return ACTIVATION_LAYERS.get(callee(last)) if isinstance(last, ast.Call) else None
        forward = self.symbols.methods.get(callee(ctor), {}).get("forward")
        if forward is None:
            return None
        returns = [n for n in ast.walk(forward) if isinstance(n, ast.Return) and n.value is not None]
        kinds = {self.activation(r.value, r, 3) for r in returns}
        return kinds.pop() if len(kinds) == 1 else None

    def activation(self, node: ast.AST | None, at: ast.AST, depth: int = 4) -> str | None:
        """'softmax' / 'log_softmax' / 'sigmoid' when `node` is such an output (a model's included)."""
        node = strip(node)
        if node is None or depth == 0:
            return None
        if isinstance(node, ast.Call):
            name = callee(node.func) if isinstance(node.func, ast.Call) else callee(node)
            if name.lower() in ACTIVATIONS:
                return ACTIVATIONS[name.lower()]
            if isinstance(node.func, ast.Attribute) and dotted(node.func):
                layer = self.src.value_of(dotted(node.func) or "", at)   # self.softmax = nn.Softmax(dim=1)
                if isinstance(layer, ast.Call) and callee(layer) in ACTIVATION_LAYERS:
                    return ACTIVATION_LAYERS[callee(layer)]
            call = self.model_call(node, at)
            return self.model_activation(self.built(call)) if call is not None else None
        if isinstance(node, ast.Name | ast.Attribute):
            value = self.src.value_of(dotted(node) or "", at)
            return self.activation(value, value, depth - 1) if value is not None else None
        return None

    # ---- tensors -----------------------------------------------------------------------------------------
    def origin(self, node: ast.AST | None, at: ast.AST, depth: int = 5) -> str | None:
        """'float' / 'int' when the script makes a target's type evident (class indices vs real values)."""
        node = strip(node)
        if node is None or depth == 0:
            return None
        if isinstance(node, LoopItem):
            return self.origin(self.src.loop_source(node), node, depth - 1)
        if isinstance(node, ast.Call):
            name = callee(node)
            dtype = ast.unparse(kwarg(node, "dtype") or ast.Constant(None))
            if name in ("randint", "argmax", "LongTensor") or "long" in dtype or "int64" in dtype:
                return "int"
            if name in ("randn", "rand", "linspace", "normal", "randn_like", "rand_like", "sin", "cos", "exp") \
                    or "float" in dtype:
                return "float"
            if name in ("tensor", "as_tensor", "from_numpy") and node.args:
                return self.origin(node.args[0], at, depth - 1)
            return None
        if isinstance(node, ast.BinOp):
            sides = {self.origin(node.left, at, depth - 1), self.origin(node.right, at, depth - 1)}
            return "float" if "float" in sides else None
        if isinstance(node, ast.Name | ast.Attribute):
            value = self.src.value_of(dotted(node) or "", at)
            return self.origin(value, value, depth - 1) if value is not None else None
        return None

    def randint_high(self, node: ast.AST | None, at: ast.AST) -> int | None:
        for _ in range(5):
            node = strip(node)
            if isinstance(node, LoopItem):
                node = at = self.src.loop_source(node)
            elif isinstance(node, ast.Call) and callee(node) == "randint":
                values = [const(a) for a in node.args if isinstance(const(a), int)]
                return values[1] if len(values) >= 2 else (values[0] if values else None)
            elif isinstance(node, ast.Name | ast.Attribute):
                node = self.src.value_of(dotted(node) or "", at)
                at = node
            else:
                return None
        return None


def strip(node: ast.AST | None) -> ast.AST | None:
    """Drop shape/dtype-only calls and indexing: `out.squeeze(1)[:, 0]` -> `out`."""
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in TRANSPARENT:
            node = node.func.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node
