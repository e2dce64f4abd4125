"""What names stand for: optimizers, schedulers, models, losses, loaders, scalers (light, flow-insensitive)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

OPTIMIZERS = {"SGD", "Adam", "AdamW", "Adamax", "RMSprop", "Adagrad", "Adadelta", "LBFGS", "NAdam", "RAdam",
              "SparseAdam", "ASGD", "Rprop", "Adafactor", "Lion"}
# schedulers meant to be stepped once per epoch (unless sized in batches)
EPOCH_SCHEDULERS = {"StepLR", "MultiStepLR", "ExponentialLR", "ReduceLROnPlateau"}
SCHEDULERS = EPOCH_SCHEDULERS | {"OneCycleLR", "CyclicLR", "LambdaLR", "MultiplicativeLR", "LinearLR",
                                 "ConstantLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
                                 "SequentialLR", "ChainedScheduler", "PolynomialLR"}
LOSS_FUNCS = {"mse_loss", "l1_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
              "binary_cross_entropy_with_logits", "smooth_l1_loss", "huber_loss", "kl_div"}
CLASSIFY_LOSSES = {"CrossEntropyLoss", "cross_entropy"}
REGRESS_LOSSES = {"MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "mse_loss", "l1_loss", "smooth_l1_loss",
                  "huber_loss"}
LOGIT_BCE = {"BCEWithLogitsLoss", "binary_cross_entropy_with_logits"}
NN_NOT_MODELS = {"Parameter", "ParameterList", "ParameterDict", "functional", "init", "utils"}
MODEL_WRAPPERS = {"deepcopy", "compile", "DataParallel", "DistributedDataParallel"}
SELF_RETURNING = {"to", "cuda", "cpu", "float", "double", "half", "train", "eval", "requires_grad_", "bfloat16"}


def dotted(node: ast.AST | None) -> str | None:
    """`self.model.fc` -> 'self.model.fc'; None for anything that is not a name/attribute chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def callee(call: ast.Call) -> str:
    """Last name of what is called: torch.optim.Adam(...) -> 'Adam', crit(...) -> 'crit'."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def kwarg(call: ast.Call, name: str) -> ast.AST | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def const(node: ast.AST | None):
    return node.value if isinstance(node, ast.Constant) else None


def strip_self_returning(node: ast.AST) -> ast.AST:
    """`Net().to(device).float()` -> `Net()`: these calls return the same module."""
    while (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
           and node.func.attr in SELF_RETURNING):
        node = node.func.value
    return node


_NAME_HINTS = [
    ("scheduler", re.compile(r"sched|lr_policy|warmup", re.I)),
    ("scaler", re.compile(r"scaler", re.I)),
    ("optimizer", re.compile(r"optim|(^|_)opt(_|$|[A-Z0-9])|^opt|_opt$", re.I)),
    ("loss", re.compile(r"criterion|loss_fn|lossfn|loss_func|^crit", re.I)),
    ("loader", re.compile(r"loader|(^|_)dl($|_)", re.I)),
    ("accelerator", re.compile(r"accelerator", re.I)),
    ("model", re.compile(r"model|net|policy|actor|critic|encoder|decoder|generator|discriminator|classifier"
                         r"|regressor|mlp|^G$|^D$", re.I)),
]


@dataclass
class Symbols:
    kinds: dict[str, str] = field(default_factory=dict)          # dotted name -> kind
    classes: dict[str, str] = field(default_factory=dict)        # dotted name -> constructor / class name
    calls: dict[str, ast.Call] = field(default_factory=dict)     # dotted name -> constructor call
    module_classes: set[str] = field(default_factory=set)        # user nn.Module subclasses
    class_defs: dict[str, ast.ClassDef] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)   # module-level functions
    methods: dict[str, dict[str, ast.FunctionDef]] = field(default_factory=dict)
    optimizer_models: dict[str, set[str]] = field(default_factory=dict)   # optimizer -> model names
    called_names: set[str] = field(default_factory=set)

    def kind(self, name: str | None) -> str | None:
        if not name:
            return None
        if name in self.kinds:
            return self.kinds[name]
        last = name.split(".")[-1]
        if last in self.kinds and not name.startswith("self."):
            return self.kinds[last]
        if f"self.{last}" in self.kinds:
            return self.kinds[f"self.{last}"]
        for kind, pattern in _NAME_HINTS:
            if pattern.search(last):
                return kind
        return None

    def value_kind(self, value: ast.AST) -> tuple[str | None, str]:
        """Kind of an assigned value, and its class name."""
        value = strip_self_returning(value)
        if isinstance(value, ast.Name | ast.Attribute):
            name = dotted(value)
            return (self.kinds.get(name or ""), self.classes.get(name or "", ""))
        if not isinstance(value, ast.Call):
            return None, ""
        name = callee(value)
        full = dotted(value.func) or ""
        if name in OPTIMIZERS or ".optim." in f".{full}." and name[:1].isupper() and "lr_scheduler" not in full:
            return "optimizer", name
        if name in SCHEDULERS or "lr_scheduler" in full:
            return "scheduler", name
        if name == "GradScaler":
            return "scaler", name
        if name == "Accelerator":
            return "accelerator", name
        if name == "DataLoader":
            return "loader", name
        if name.endswith("Loss") or name in LOSS_FUNCS:
            return "loss", name
        if name in MODEL_WRAPPERS and value.args:
            inner_kind, inner_class = self.value_kind(value.args[0])
            return (inner_kind, inner_class) if inner_kind == "model" else (None, "")
        if name in self.module_classes:
            return "model", name
        if name in self.class_defs:
            return "instance", name
        root = full.split(".")[0] if full else ""
        if (root in ("nn", "torchvision", "models") or full.startswith("torch.nn.")) and name[:1].isupper() \
                and name not in NN_NOT_MODELS:
            return "model", name
        return None, ""


def collect(tree: ast.Module, nodes: list[ast.AST] | None = None) -> Symbols:
    symbols = Symbols()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            symbols.functions[node.name] = node
    nodes = nodes if nodes is not None else list(ast.walk(tree))
    classes = [n for n in nodes if isinstance(n, ast.ClassDef)]
    for cls in classes:
        symbols.class_defs[cls.name] = cls
        symbols.methods[cls.name] = {
            n.name: n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    changed = True
    while changed:  # subclasses of subclasses of nn.Module
        changed = False
        for cls in classes:
            if cls.name in symbols.module_classes:
                continue
            for base in cls.bases:
                base_name = (dotted(base) or "").split(".")[-1]
                if base_name == "Module" or base_name in symbols.module_classes:
                    symbols.module_classes.add(cls.name)
                    changed = True
    for node in nodes:
        if isinstance(node, ast.Call):
            name = callee(node)
            if name:
                symbols.called_names.add(name)
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            kind, cls_name = symbols.value_kind(node.value)
            for target in targets:
                _bind(symbols, target, node.value, kind, cls_name)
    return symbols


def _bind(symbols: Symbols, target: ast.AST, value: ast.AST, kind: str | None, cls_name: str) -> None:
    name = dotted(target)
    if name is None:
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            for t, v in zip(target.elts, value.elts):
                k, c = symbols.value_kind(v)
                _bind(symbols, t, v, k, c)
        return
    if kind is None:
        return
    symbols.kinds.setdefault(name, kind)
    symbols.classes.setdefault(name, cls_name)
    stripped = strip_self_returning(value)
    if isinstance(stripped, ast.Call):
        symbols.calls.setdefault(name, stripped)
        if kind == "optimizer":
            models = symbols.optimizer_models.setdefault(name, set())
            for sub in ast.walk(stripped):
                if isinstance(sub, ast.Call) and callee(sub) in ("parameters", "named_parameters"):
                    model = dotted(sub.func.value) if isinstance(sub.func, ast.Attribute) else None
                    if model:
                        models.add(model)
