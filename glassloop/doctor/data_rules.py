"""Rules over data, checkpoints and model objects (GL114, GL115, GL118, GL119, GL124, GL125)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from glassloop.doctor.flow import Event, Flow
from glassloop.doctor.models import Values, strip
from glassloop.doctor.symbols import Symbols, callee, const, dotted, kwarg, strip_self_returning
from glassloop.doctor.values import Source

Emit = Callable[..., None]
STAT_METHODS = {"mean", "std", "var", "min", "max", "amin", "amax", "fit", "fit_transform", "nanmean", "nanstd"}
RANDOM_CALLS = {"randint", "rand", "randn", "randperm", "random", "choice", "choices", "sample", "shuffle",
                "uniform", "normal", "integers", "multinomial", "RandomCrop", "RandomResizedCrop",
                "RandomHorizontalFlip"}
SPLIT_INDEX = re.compile(r"(^|_)(val|valid|test|te|va|tr|train)(_|$|idx)|^(val|test|train)", re.I)
WEIGHTS_ONLY_DEFAULT = (2, 6)


class DataRules:
    def __init__(self, source: Source, values: Values, symbols: Symbols, flows: list[Flow], emit: Emit,
                 torch_minimum: tuple[int, ...] | None = None) -> None:
        self.src, self.values, self.symbols, self.flows, self.emit = source, values, symbols, flows, emit
        self.torch_minimum = torch_minimum
        self.events: list[Event] = [e for f in flows for e in f.events]
        self.calls = [n for n in source.nodes if isinstance(n, ast.Call)]

    def run(self) -> None:
        self.save_load()
        self.normalise_before_split()
        self.loader_shuffle()
        self.freeze()
        self.frozen_head()
        self.replaced_model()

    # ---- GL114 GL115 ---------------------------------------------------------------------------------------
    def save_load(self) -> None:
        safe_by_default = self.torch_minimum is not None and self.torch_minimum >= WEIGHTS_ONLY_DEFAULT
        allowlisted = any(callee(c) == "add_safe_globals" for c in self.calls)
        for call in self.calls:
            full = dotted(call.func) or ""
            if full == "torch.save" and call.args:
                saved = strip_self_returning(call.args[0])
                if isinstance(saved, ast.Name | ast.Attribute) and self.values.constructor(saved, call) is not None:
                    self.emit(call.lineno, "GL114", f"{dotted(saved)} is a model object, not its state_dict()")
            elif full == "torch.load":
                weights_only = kwarg(call, "weights_only")
                if const(weights_only) is False:
                    self.emit(call.lineno, "GL115", "weights_only=False")
                elif weights_only is None and not (safe_by_default or allowlisted or self._in_safe_globals(call)):
                    self.emit(call.lineno, "GL115", "no torch>=2.6 requirement found beside the script")

    def _in_safe_globals(self, call: ast.Call) -> bool:
        node: ast.AST = call
        while node in self.src.parents:
            node = self.src.parents[node]
            if isinstance(node, ast.With) and any(
                    isinstance(i.context_expr, ast.Call) and callee(i.context_expr) == "safe_globals"
                    for i in node.items):
                return True
        return False

    # ---- GL118 ---------------------------------------------------------------------------------------------
    def normalise_before_split(self) -> None:
        splits = self._splits()
        if not splits:
            return
        flagged: set[str] = set()
        for node in self.src.assign_nodes:
            for call in (n for n in ast.walk(node.value) if isinstance(n, ast.Call)):
                data = self._statistics_of(call)
                if not data or re.search(r"train|tr$", data, re.I) or data in flagged:
                    continue
                normalising = callee(call) in ("fit", "fit_transform") or any(
                    isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub | ast.Div) for n in ast.walk(node.value)) \
                    or any(re.search(r"mean|std|mu|sigma|min|max|scale", dotted(t) or "", re.I)
                           for target in node.targets for t in ast.walk(target))  # also `mean, std = ...`
                if normalising and self._split_after(data, node.lineno, splits):
                    flagged.add(data)
                    self.emit(node.lineno, "GL118", f"statistics of {data}")

    def _statistics_of(self, call: ast.Call) -> str | None:
        """The data whose statistics `call` takes (`X.mean(0)`, `np.std(X)`, `scaler.fit(X)`), if any."""
        name = callee(call)
        if name not in STAT_METHODS:
            return None
        receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
        if isinstance(receiver, ast.Subscript) and re.search(r"train|^tr", ast.unparse(receiver.slice), re.I):
            return None   # X[train_idx].mean(): statistics of the training rows only
        if name in ("fit", "fit_transform"):
            return dotted(strip(call.args[0])) if call.args else None
        if receiver is not None and dotted(receiver) not in ("torch", "np", "numpy"):
            return dotted(strip(receiver))
        return dotted(strip(call.args[0])) if call.args else None

    def _splits(self) -> list[tuple[str, int]]:
        splits: list[tuple[str, int]] = []
        for node in self.src.nodes:
            if isinstance(node, ast.Call) and callee(node) in ("train_test_split", "random_split"):
                for arg in node.args:
                    name = dotted(strip(arg))
                    if name:
                        splits.append((name, node.lineno))
                        value = self.src.value_of(name, node)
                        if isinstance(value, ast.Call) and callee(value) == "TensorDataset":
                            splits += [(dotted(a) or "", node.lineno) for a in value.args]
            elif isinstance(node, ast.Assign) and not self.src.in_loop(node):
                values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                for value in values:
                    if not isinstance(value, ast.Subscript):
                        continue
                    index, name = value.slice, dotted(value.value)
                    splitting = isinstance(index, ast.Slice) or (not isinstance(index, ast.Tuple) and re.search(
                        r"train|val|test|idx|perm|mask|split", ast.unparse(index), re.I))
                    if name and splitting:
                        splits.append((name, node.lineno))
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name | ast.Attribute) \
                    and SPLIT_INDEX.search((dotted(node.slice) or "").split(".")[-1]) and dotted(node.value):
                splits.append((dotted(node.value) or "", node.lineno))   # X[val_idx], X[tr]
        return splits

    def _split_after(self, data: str, line: int, splits: list[tuple[str, int]]) -> bool:
        derived = {data}
        for (_, name), values in self.src.assigns.items():
            for ln, value in values:
                if ln >= line and any(dotted(n) == data for n in ast.walk(value) if isinstance(n, ast.Name)):
                    derived.add(name)
        return any(name in derived and ln > line for name, ln in splits)

    # ---- GL119 ---------------------------------------------------------------------------------------------
    def loader_shuffle(self) -> None:
        trained_iters: set[str] = set()
        for flow in self.flows:
            for loop in flow.loops.values():
                if {"BW", "STEP"} <= {e.kind for e in flow.events if loop.id in e.ctx.loops}:
                    trained_iters |= loop.iter_names
        for call in self.calls:
            if callee(call) != "DataLoader" or any(k.arg is None for k in call.keywords):
                continue   # `**kwargs`: shuffle may well be in there
            if kwarg(call, "sampler") is not None or kwarg(call, "batch_sampler") is not None:
                continue
            shuffle = kwarg(call, "shuffle")
            if shuffle is not None and const(shuffle) is not False or len(call.args) > 2:
                continue
            if call.args and self._samples_itself(call.args[0], call):
                continue
            stmt = self.src.statement(call)
            names = {dotted(t) or "" for t in getattr(stmt, "targets", [])}
            text = " ".join(names) + " " + (ast.unparse(call.args[0]) if call.args else "")
            if re.search(r"val|test|eval|dev|hold", text, re.I):
                continue
            if "train" in text.lower() or any(n and (n in trained_iters or n.split(".")[-1] in trained_iters)
                                              for n in names):
                self.emit(call.lineno, "GL119", "")

    def _samples_itself(self, dataset: ast.AST, at: ast.AST) -> bool:
        """An IterableDataset, or a Dataset whose __getitem__ draws at random: shuffling is its own business."""
        built = self.src.follow(dataset)
        name = callee(built) if isinstance(built, ast.Call) else ""
        cls = self.symbols.class_defs.get(name)
        if cls is None:
            return False
        if any("Iterable" in (dotted(b) or "") for b in cls.bases):
            return True
        methods = self.symbols.methods.get(name, {})
        bodies = [methods[m] for m in ("__getitem__", "__iter__") if m in methods]
        return any(isinstance(n, ast.Call) and callee(n) in RANDOM_CALLS for body in bodies for n in ast.walk(body))

    # ---- GL124 ---------------------------------------------------------------------------------------------
    def freeze(self) -> None:
        for node in self.src.assign_nodes:
            for target in node.targets:
                if not isinstance(target, ast.Attribute):
                    continue
                if target.attr == "require_grad":
                    self.emit(node.lineno, "GL124", "`require_grad` is not an attribute PyTorch reads")
                elif target.attr == "requires_grad" and self._is_module(target.value, node):
                    self.emit(node.lineno, "GL124", "requires_grad set on a module")

    def _is_module(self, node: ast.AST, at: ast.AST) -> bool:
        indexed = isinstance(node, ast.Subscript)   # model[0], self.layers[i]: a sub-module
        while isinstance(node, ast.Subscript):
            node = node.value
        name = dotted(node)
        if indexed and name and self.symbols.kind(name) == "model":
            return True
        if name is None:
            return False
        last = name.split(".")[-1]
        if last in ("weight", "bias") or re.search(r"param|^p$|^w$|^b$|weight|bias", last, re.I):
            return False
        loop = self.src.enclosing(at, ast.For)
        if isinstance(loop, ast.For) and dotted(loop.target) == name:
            text = ast.unparse(loop.iter)
            return bool(re.search(r"children|modules|layers", text)) and "param" not in text
        return self.symbols.kind(name) == "model" and (name in self.symbols.kinds or "." in name)

    def frozen_head(self) -> None:
        """`model.fc = nn.Linear(...)` and then every parameter of `model` frozen: the new head is frozen too."""
        for loop in (n for n in self.src.nodes if isinstance(n, ast.For)):
            it = loop.iter
            if not (isinstance(it, ast.Call) and callee(it) == "parameters" and isinstance(it.func, ast.Attribute)):
                continue
            model = dotted(it.func.value)
            freeze = next((s for s in loop.body if isinstance(s, ast.Assign) and const(s.value) is False and any(
                isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in s.targets)), None)
            if not model or freeze is None:
                continue
            heads = [n for n in self.src.assign_nodes if n.lineno < loop.lineno and any(
                (dotted(t) or "").startswith(model + ".") for t in n.targets)
                and self.symbols.value_kind(n.value)[0] == "model" and self.src.scope(n) is self.src.scope(loop)]
            for head in heads:
                name = next(dotted(t) for t in head.targets if (dotted(t) or "").startswith(model + "."))
                if self._trained_later(name, loop.lineno):
                    self.emit(freeze.lineno, "GL124", f"{name} (set at line {head.lineno}) is frozen too; "
                                                      "freeze before attaching the new head")
                    return

    def _trained_later(self, module: str, line: int) -> bool:
        unfrozen = any(isinstance(n, ast.Call) and callee(n) == "requires_grad_" and n.lineno > line
                       and (dotted(n.func) or "").startswith(module) for n in self.calls) or any(
            n.lineno > line and const(n.value) is True and any(
                isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in n.targets)
            for n in self.src.assign_nodes)
        optimized = any(isinstance(n, ast.Call) and callee(n) == "parameters" and isinstance(n.func, ast.Attribute)
                        and dotted(n.func.value) == module and n.lineno > line for n in self.calls)
        return optimized and not unfrozen

    # ---- GL125 ---------------------------------------------------------------------------------------------
    def replaced_model(self) -> None:
        for opt_assign, model, scope in self._optimizers_built():
            for node in self.src.assign_nodes:
                if node.lineno <= opt_assign.lineno or self.src.scope(node) is not scope:
                    continue
                if not any(dotted(t) == model for t in node.targets):
                    continue
                value = strip_self_returning(node.value)
                wraps_self = any(dotted(n) == model for n in ast.walk(value) if isinstance(n, ast.Name | ast.Attribute))
                rebuilt = self.values.constructor(value, node) is not None or (
                    isinstance(value, ast.Call) and dotted(value.func) == "torch.load")
                if not rebuilt or wraps_self or self._rebuilt_optimizer(model, node.lineno, scope):
                    continue
                optimizer = next((dotted(t) for t in opt_assign.targets if dotted(t)), "")
                if self._steps_after(optimizer, node):
                    self.emit(node.lineno, "GL125", f"{model} is rebuilt after its optimizer (line {opt_assign.lineno})")
                    break

    def _optimizers_built(self) -> list[tuple[ast.Assign, str, ast.AST]]:
        built = []
        for node in self.src.assign_nodes:
            if isinstance(node.value, ast.Call) and self.symbols.value_kind(node.value)[0] == "optimizer":
                for sub in ast.walk(node.value):
                    if isinstance(sub, ast.Call) and callee(sub) in ("parameters", "named_parameters") \
                            and isinstance(sub.func, ast.Attribute) and dotted(sub.func.value):
                        built.append((node, dotted(sub.func.value) or "", self.src.scope(node)))
        return built

    def _rebuilt_optimizer(self, model: str, line: int, scope: ast.AST) -> bool:
        return any(n.lineno > line and m == model and s is scope for n, m, s in self._optimizers_built())

    def _steps_after(self, optimizer: str, replaced: ast.Assign) -> bool:
        """The stale optimizer still steps after the replacement (a reload for testing is fine)."""
        last = optimizer.split(".")[-1]
        loop = self.src.enclosing(replaced, ast.For | ast.While)
        for event in self.events:
            if event.kind != "STEP" or event.obj.split(".")[-1] != last:
                continue
            if event.line > replaced.lineno:
                return True
            if loop is not None and loop.lineno <= event.line <= (loop.end_lineno or loop.lineno):
                return True
        return False

