"""Rules over expressions and light name data-flow (GL110-GL119, GL123-GL125, GL127, GL129)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from glassloop.doctor.flow import Event, Flow
from glassloop.doctor.symbols import (
    CLASSIFY_LOSSES,
    LOGIT_BCE,
    REGRESS_LOSSES,
    Symbols,
    callee,
    const,
    dotted,
    kwarg,
    strip_self_returning,
)

Emit = Callable[[int, str, str], None]
GAMMA = re.compile(r"gamma|discount", re.I)
TRANSPARENT = {"squeeze", "unsqueeze", "view", "reshape", "flatten", "float", "to", "contiguous", "double",
               "cpu", "cuda", "clone", "long", "type", "view_as"}
STAT_METHODS = {"mean", "std", "var", "min", "max", "amin", "amax", "fit", "fit_transform", "nanmean", "nanstd"}
CUTS = {"detach", "item", "numpy", "tolist"}
REWRAP = {"tensor", "Tensor", "as_tensor", "from_numpy", "FloatTensor", "array"}


class Source:
    """Per-file index: parents, scopes, and `name -> assignments` per scope, for one-hop data-flow."""

    def __init__(self, tree: ast.Module, nodes: list[ast.AST] | None = None) -> None:
        self.nodes = nodes if nodes is not None else list(ast.walk(tree))
        self.parents: dict[ast.AST, ast.AST] = {}
        self.assigns: dict[tuple[int, str], list[tuple[int, ast.AST]]] = {}
        self.assign_nodes: list[ast.Assign] = []
        self._scopes: dict[ast.AST, ast.AST] = {}
        for node in self.nodes:
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        for node in self.nodes:
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                if isinstance(node, ast.Assign):
                    self.assign_nodes.append(node)
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                scope = id(self.scope(node))
                for target in targets:
                    elts = target.elts if isinstance(target, ast.Tuple) else [target]
                    values = node.value.elts if isinstance(target, ast.Tuple) and isinstance(
                        node.value, ast.Tuple) and len(node.value.elts) == len(elts) else None
                    for i, elt in enumerate(elts):
                        name = dotted(elt)
                        if name and (values is not None or len(elts) == 1):
                            value = values[i] if values is not None else node.value
                            self.assigns.setdefault((scope, name), []).append((node.lineno, value))

    def scope(self, node: ast.AST) -> ast.AST:
        start = node
        if start in self._scopes:
            return self._scopes[start]
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                break
        self._scopes[start] = node
        return node

    def value_of(self, name: str, at: ast.AST) -> ast.AST | None:
        """The latest assignment to `name` before `at`'s line in its scope (else the module scope)."""
        line = getattr(at, "lineno", 10**9)
        scope = self.scope(at)
        for key in (id(scope), id(self.module(at))):
            found = [(ln, v) for ln, v in self.assigns.get((key, name), []) if ln < line or (
                ln == line and key != id(scope))]
            if found:
                return found[-1][1]
            found_any = self.assigns.get((key, name), [])
            if found_any and key != id(scope):
                return found_any[-1][1]
        return None

    def module(self, node: ast.AST) -> ast.AST:
        while node in self.parents:
            node = self.parents[node]
        return node

    def in_no_grad(self, node: ast.AST) -> bool:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.With):
                for item in node.items:
                    if isinstance(item.context_expr, ast.Call) and callee(item.context_expr) in (
                            "no_grad", "inference_mode"):
                        return True
            if isinstance(node, ast.FunctionDef):
                return any((dotted(d.func if isinstance(d, ast.Call) else d) or "").endswith(
                    ("no_grad", "inference_mode")) for d in node.decorator_list)
        return False

    def in_loop(self, node: ast.AST) -> bool:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.For | ast.While | ast.comprehension):
                return True
            if isinstance(node, ast.FunctionDef):
                return False
        return False

    def statement(self, node: ast.AST) -> ast.AST:
        while not isinstance(node, ast.stmt) and node in self.parents:
            node = self.parents[node]
        return node


class ExprRules:
    def __init__(self, tree: ast.Module, source: Source, symbols: Symbols, flows: list[Flow], emit: Emit) -> None:
        self.tree, self.src, self.symbols, self.flows, self.emit = tree, source, symbols, flows, emit
        self.events: list[Event] = [e for f in flows for e in f.events]
        self.backwarded = {e.obj.split(".")[-1] for e in self.events if e.kind == "BW" and e.obj}
        self.calls = [n for n in source.nodes if isinstance(n, ast.Call)]

    def run(self) -> None:
        self.accumulate()
        self.unreduced()
        self.loss_inputs()
        self.save_load()
        self.dqn()
        self.normalise_before_split()
        self.loader_shuffle()
        self.freeze()
        self.replaced_model()
        self.log_zero()

    # ---- helpers -------------------------------------------------------------------------------------------
    def resolve(self, node: ast.AST | None, at: ast.AST, depth: int = 3) -> ast.AST | None:
        """Follow a name through its latest assignment (a few hops)."""
        while depth > 0 and isinstance(node, ast.Name | ast.Attribute) and dotted(node):
            value = self.src.value_of(dotted(node) or "", at)
            if value is None:
                return node
            at, node, depth = value, value, depth - 1
        return node

    def strip(self, node: ast.AST | None) -> ast.AST | None:
        while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in TRANSPARENT:
            node = node.func.value
        while isinstance(node, ast.Subscript):
            node = node.value
        return node

    def loss_class(self, call: ast.Call) -> str:
        name = callee(call)
        full = dotted(call.func) or ""
        if self.symbols.kind(full) == "loss":
            return self.symbols.classes.get(full) or self.symbols.classes.get(name, "") or ""
        if isinstance(call.func, ast.Call):
            return callee(call.func)
        return name

    def model_of(self, node: ast.AST | None, at: ast.AST) -> str | None:
        """The model whose output `node` is (through names and shape-only calls)."""
        for _ in range(4):
            node = self.strip(node)
            if isinstance(node, ast.Call):
                target = dotted(node.func) or ""
                if self.symbols.kind(target) == "model" and callee(node) not in ("parameters", "state_dict"):
                    return target
                if callee(node) == "forward" and isinstance(node.func, ast.Attribute):
                    return dotted(node.func.value)
                return None
            if isinstance(node, ast.Name | ast.Attribute):
                value = self.src.value_of(dotted(node) or "", at)
                if value is None:
                    return None
                at, node = value, value
        return None

    def activation(self, node: ast.AST | None, at: ast.AST, depth: int = 4) -> str | None:
        """'softmax' / 'log_softmax' / 'sigmoid' when `node` is such an output."""
        node = self.strip(node)
        if node is None or depth == 0:
            return None
        if isinstance(node, ast.Call):
            name = callee(node)
            if isinstance(node.func, ast.Call):
                name = callee(node.func)
            if name.lower() in ("softmax", "log_softmax", "logsoftmax", "sigmoid"):
                return {"logsoftmax": "log_softmax"}.get(name.lower(), name.lower())
            model = self.model_of(node, at)
            return self.model_activation(model) if model else None
        if isinstance(node, ast.Name | ast.Attribute):
            value = self.src.value_of(dotted(node) or "", at)
            return self.activation(value, value, depth - 1) if value is not None else None
        return None

    def model_activation(self, model: str) -> str | None:
        cls = self.symbols.classes.get(model) or self.symbols.classes.get(model.split(".")[-1], "")
        call = self.symbols.calls.get(model) or self.symbols.calls.get(model.split(".")[-1])
        if cls == "Sequential" and call is not None and call.args:
            last = call.args[-1]
            if isinstance(last, ast.Call) and callee(last) in ("Softmax", "LogSoftmax", "Sigmoid"):
                return {"Softmax": "softmax", "LogSoftmax": "log_softmax", "Sigmoid": "sigmoid"}[callee(last)]
            return None
        forward = self.symbols.methods.get(cls, {}).get("forward")
        if forward is None:
            return None
        returns = [n for n in ast.walk(forward) if isinstance(n, ast.Return) and n.value is not None]
        kinds = {self.activation(r.value, r, 3) for r in returns}
        return kinds.pop() if len(kinds) == 1 else None

    def out_features(self, model: str | None) -> int | None:
        if not model:
            return None
        cls = self.symbols.classes.get(model) or self.symbols.classes.get(model.split(".")[-1], "")
        call = self.symbols.calls.get(model) or self.symbols.calls.get(model.split(".")[-1])
        layers: list[ast.Call] = []
        if cls == "Linear" and call is not None:
            layers = [call]
        elif cls == "Sequential" and call is not None:
            layers = [a for a in call.args if isinstance(a, ast.Call) and callee(a) == "Linear"]
        elif cls in self.symbols.class_defs:
            layers = [n for n in ast.walk(self.symbols.class_defs[cls]) if isinstance(n, ast.Call)
                      and callee(n) == "Linear"]
            layers.sort(key=lambda n: (n.lineno, n.col_offset))
        if not layers:
            return None
        last = layers[-1]
        value = const(last.args[1]) if len(last.args) > 1 else const(kwarg(last, "out_features"))
        return value if isinstance(value, int) else None

    def origin(self, node: ast.AST | None, at: ast.AST, depth: int = 4) -> str | None:
        """'float' / 'int' when the script makes a target's type evident."""
        node = self.strip(node)
        if node is None or depth == 0:
            return None
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
            if isinstance(node.op, ast.Compare):
                return None
            return "float" if "float" in sides else None
        if isinstance(node, ast.Name | ast.Attribute):
            value = self.src.value_of(dotted(node) or "", at)
            return self.origin(value, value, depth - 1) if value is not None else None
        return None

    def randint_high(self, node: ast.AST | None, at: ast.AST) -> int | None:
        for _ in range(4):
            node = self.strip(node)
            if isinstance(node, ast.Call) and callee(node) == "randint":
                values = [const(a) for a in node.args if isinstance(const(a), int)]
                return values[1] if len(values) >= 2 else (values[0] if values else None)
            if isinstance(node, ast.Name | ast.Attribute):
                node = self.src.value_of(dotted(node) or "", at)
                at = node
            else:
                return None
        return None

    # ---- GL110 ---------------------------------------------------------------------------------------------
    def accumulate(self) -> None:
        for event in self.events:
            if event.kind != "ACC" or event.ctx.no_grad is not False or not event.ctx.loops:
                continue
            node = event.node
            if not isinstance(node, ast.AugAssign) or event.obj.split(".")[-1] in self.backwarded:
                continue
            names = {dotted(n) for n in ast.walk(node.value) if isinstance(n, ast.Name | ast.Attribute)}
            calls = {callee(n) for n in ast.walk(node.value) if isinstance(n, ast.Call)}
            if calls & (CUTS | {"float", "int"}):
                continue
            loss_names = {n for n in names if n and (n.split(".")[-1] in self.backwarded)}
            direct_loss = any(isinstance(n, ast.Call) and self.symbols.kind(dotted(n.func)) == "loss"
                              for n in ast.walk(node.value))
            if loss_names or direct_loss:
                self.emit(node.lineno, "GL110", "")

    # ---- GL111 ---------------------------------------------------------------------------------------------
    def unreduced(self) -> None:
        for event in self.events:
            if event.kind != "BW" or event.info.get("loss") is None:
                continue
            node = event.info["loss"]
            if self._unreduced(node, node, 3):
                self.emit(event.line, "GL111", "")

    def _unreduced(self, node: ast.AST, at: ast.AST, depth: int) -> bool:
        if depth == 0 or node is None:
            return False
        calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
        if any(callee(c) in ("mean", "sum", "item", "norm") for c in calls):
            return False
        for call in calls:
            reduction = kwarg(call, "reduction")
            if const(reduction) == "none":
                return True
            constructor = self.symbols.calls.get(dotted(call.func) or "")
            if constructor is not None and const(kwarg(constructor, "reduction")) == "none":
                return True
        if isinstance(node, ast.Name | ast.Attribute):
            value = self.src.value_of(dotted(node) or "", at)
            return value is not None and self._unreduced(value, value, depth - 1)
        return False

    # ---- GL112 GL113 GL123 GL127 ---------------------------------------------------------------------------
    def loss_inputs(self) -> None:
        for call in self.calls:
            cls = self.loss_class(call)
            if not cls or len(call.args) < 2:
                continue
            is_ce = cls in CLASSIFY_LOSSES
            if is_ce or cls in LOGIT_BCE:
                act = self.activation(call.args[0], call)
                if is_ce and act in ("softmax", "log_softmax"):
                    self.emit(call.lineno, "GL112", f"{act} into {cls}")
                if cls in LOGIT_BCE and act == "sigmoid":
                    self.emit(call.lineno, "GL123", "")
            model = self.model_of(call.args[0], call)
            if is_ce:
                if self.out_features(model) == 1 or self.origin(call.args[1], call) == "float":
                    self.emit(call.lineno, "GL113", "CrossEntropyLoss on a regression target")
            elif cls in REGRESS_LOSSES and self.origin(call.args[1], call) == "int":
                high = self.randint_high(call.args[1], call)
                outputs = self.out_features(model)
                if (outputs or 1) > 1 or (high or 0) > 2:
                    self.emit(call.lineno, "GL113", f"{cls} on class labels")
            if cls.endswith("Loss") or cls in CLASSIFY_LOSSES | REGRESS_LOSSES | LOGIT_BCE | {"nll_loss"}:
                self._detached_output(call)

    def _detached_output(self, call: ast.Call) -> None:
        stmt = self.src.statement(call)
        assigned = {dotted(t).split(".")[-1] for t in getattr(stmt, "targets", []) if dotted(t)}
        parent = self.src.parents.get(call)
        direct_bw = isinstance(parent, ast.Attribute) and parent.attr == "backward"
        if not (assigned & self.backwarded or direct_bw):
            return
        node: ast.AST | None = call.args[0]
        at: ast.AST = call
        for _ in range(3):
            cut = self._cut(node, at)
            if cut is not None:
                self.emit(cut.lineno, "GL127", "")
                return
            if isinstance(node, ast.Name):
                value = self.src.value_of(node.id, at)
                if value is None:
                    return
                node, at = value, value
            else:
                return

    def _outer_nodes(self, node: ast.AST | None):
        """Nodes of an expression, not descending into the arguments of model calls (their inputs)."""
        todo = [node] if node is not None else []
        while todo:
            sub = todo.pop()
            yield sub
            if isinstance(sub, ast.Call) and self.symbols.kind(dotted(sub.func)) == "model":
                continue
            todo.extend(ast.iter_child_nodes(sub))

    def _cut(self, node: ast.AST | None, at: ast.AST) -> ast.AST | None:
        for sub in self._outer_nodes(node):
            if isinstance(sub, ast.Call) and callee(sub) in CUTS | REWRAP:
                inner = sub.func.value if callee(sub) in CUTS and isinstance(sub.func, ast.Attribute) else (
                    sub.args[0] if sub.args else None)
                if inner is not None and (self.model_of(inner, at) or any(
                        self.model_of(x, at) for x in ast.walk(inner) if isinstance(x, ast.Call | ast.Name))):
                    return sub
            if isinstance(sub, ast.Attribute) and sub.attr == "data" and self.model_of(sub.value, at):
                return sub
        return None

    # ---- GL114 GL115 ---------------------------------------------------------------------------------------
    def save_load(self) -> None:
        for call in self.calls:
            full = dotted(call.func) or ""
            if full == "torch.save" and call.args:
                arg = strip_self_returning(call.args[0])
                if isinstance(arg, ast.Name | ast.Attribute) and self.symbols.kind(dotted(arg)) == "model":
                    self.emit(call.lineno, "GL114", "")
            elif full == "torch.load":
                weights_only = kwarg(call, "weights_only")
                if weights_only is None or const(weights_only) is False:
                    self.emit(call.lineno, "GL115", "")

    # ---- GL117 ---------------------------------------------------------------------------------------------
    def dqn(self) -> None:
        for event in self.events:
            if event.kind != "FWD" or event.ctx.no_grad is not False:
                continue
            node, stmt = event.node, event.info.get("stmt")
            if node is None or stmt is None or self._detached_chain(node, stmt):
                continue
            targets = set(event.info.get("targets", ()))
            scope = self.src.scope(stmt)
            for mult in (n for n in ast.walk(scope) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult)):
                sides = (mult.left, mult.right)
                for gamma_side, other in (sides, sides[::-1]):
                    named_gamma = any(isinstance(n, ast.Name | ast.Attribute) and GAMMA.search(dotted(n) or "")
                                      for n in ast.walk(gamma_side))
                    # `r + 0.99 * target_net(s2)`: a literal discount in front of a target network's output
                    literal_gamma = isinstance(gamma_side, ast.Constant) and isinstance(gamma_side.value, float) \
                        and 0 < gamma_side.value < 1 and re.search(r"target|tgt", event.obj or "", re.I)
                    if not (named_gamma or literal_gamma):
                        continue
                    inside = any(n is node for n in ast.walk(other))
                    uses = {n.id for n in ast.walk(other) if isinstance(n, ast.Name)} & targets
                    if (inside or (uses and mult.lineno >= event.line)) and not self._target_detached(mult):
                        self.emit(event.line, "GL117", "")
                        return

    def _detached_chain(self, node: ast.AST, stmt: ast.AST) -> bool:
        calls = {callee(n) for n in ast.walk(stmt) if isinstance(n, ast.Call)}
        return bool(calls & {"detach", "argmax", "item"}) or self.src.in_no_grad(stmt)

    def _target_detached(self, mult: ast.AST) -> bool:
        stmt = self.src.statement(mult)
        if self.src.in_no_grad(stmt) or "detach" in {callee(n) for n in ast.walk(stmt) if isinstance(n, ast.Call)}:
            return True
        names = {dotted(t) for t in getattr(stmt, "targets", []) if dotted(t)}
        scope = self.src.scope(stmt)
        for call in (n for n in ast.walk(scope) if isinstance(n, ast.Call) and callee(n) == "detach"):
            if isinstance(call.func, ast.Attribute) and dotted(call.func.value) in names:
                return True
        return False

    # ---- GL118 ---------------------------------------------------------------------------------------------
    def normalise_before_split(self) -> None:
        splits: list[tuple[str, int]] = []
        for node in self.src.nodes:
            if isinstance(node, ast.Call) and callee(node) in ("train_test_split", "random_split"):
                for arg in node.args:
                    name = dotted(self.strip(arg))
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
                    index = value.slice
                    name = dotted(value.value)
                    splitting = isinstance(index, ast.Slice) or (not isinstance(index, ast.Tuple) and re.search(
                        r"train|val|test|idx|perm|mask|split", ast.unparse(index), re.I))
                    if name and splitting:
                        splits.append((name, node.lineno))
        split_index = re.compile(r"(^|_)(val|valid|test|te|va|tr|train)(_|$|idx)|^(val|test|train)", re.I)
        for node in self.src.nodes:   # X[val_idx], X[tr]: indexing by split indices (anywhere)
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name | ast.Attribute) \
                    and split_index.search((dotted(node.slice) or "").split(".")[-1]) and dotted(node.value):
                splits.append((dotted(node.value) or "", node.lineno))
        if not splits:
            return
        flagged: set[str] = set()
        for node in self.src.assign_nodes:
            for call in (n for n in ast.walk(node.value) if isinstance(n, ast.Call)):
                name = callee(call)
                if name not in STAT_METHODS:
                    continue
                if name in ("fit", "fit_transform") and call.args:
                    data = dotted(self.strip(call.args[0]))
                elif isinstance(call.func, ast.Attribute) and dotted(call.func.value) not in ("torch", "np", "numpy"):
                    data = dotted(self.strip(call.func.value))
                elif call.args:
                    data = dotted(self.strip(call.args[0]))
                else:
                    data = None
                receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
                if isinstance(receiver, ast.Subscript) and re.search(r"train|^tr", ast.unparse(receiver.slice), re.I):
                    continue   # X[train_idx].mean(): statistics of the training rows only
                if not data or re.search(r"train|tr$", data, re.I) or data in flagged:
                    continue
                normalising = name in ("fit", "fit_transform") or any(
                    isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub | ast.Div) for n in ast.walk(node.value)) \
                    or any(re.search(r"mean|std|mu|sigma|min|max|scale", dotted(t) or "", re.I)
                           for target in node.targets for t in ast.walk(target))  # also `mean, std = ...`
                if normalising and self._split_after(data, node.lineno, splits):
                    flagged.add(data)
                    self.emit(node.lineno, "GL118", f"statistics of {data}")

    def _split_after(self, data: str, line: int, splits: list[tuple[str, int]]) -> bool:
        derived = {data}
        for (_, name), values in self.src.assigns.items():
            for ln, value in values:
                if ln >= line and any(dotted(n) == data for n in ast.walk(value) if isinstance(n, ast.Name)):
                    derived.add(name)
        return any(name in derived and ln > line for name, ln in splits) or any(
            name == data and ln >= line for name, ln in splits if name != data and False)

    # ---- GL119 ---------------------------------------------------------------------------------------------
    def loader_shuffle(self) -> None:
        trained_iters: set[str] = set()
        for flow in self.flows:
            for loop in flow.loops.values():
                events = [e for e in flow.events if loop.id in e.ctx.loops]
                if {"BW", "STEP"} <= {e.kind for e in events}:
                    trained_iters |= loop.iter_names
        for call in self.calls:
            if callee(call) != "DataLoader":
                continue
            if kwarg(call, "sampler") is not None or kwarg(call, "batch_sampler") is not None:
                continue
            shuffle = kwarg(call, "shuffle")
            if shuffle is not None and const(shuffle) is not False:
                continue
            stmt = self.src.statement(call)
            names = {dotted(t) or "" for t in getattr(stmt, "targets", [])}
            dataset = ast.unparse(call.args[0]) if call.args else ""
            text = " ".join(names) + " " + dataset
            if re.search(r"val|test|eval|dev|hold", text, re.I):
                continue
            if "train" in text.lower() or any(n and (n in trained_iters or n.split(".")[-1] in trained_iters)
                                              for n in names):
                self.emit(call.lineno, "GL119", "")

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
        parent = at
        while parent in self.src.parents:
            parent = self.src.parents[parent]
            if isinstance(parent, ast.For) and dotted(parent.target) == name:
                text = ast.unparse(parent.iter)
                return bool(re.search(r"children|modules|layers", text)) and "param" not in text
        return self.symbols.kind(name) == "model" and (name in self.symbols.kinds or "." in name)

    # ---- GL125 ---------------------------------------------------------------------------------------------
    def replaced_model(self) -> None:
        built: list[tuple[str, int, ast.AST]] = []   # (model, line, scope)
        for node in self.src.assign_nodes:
            if isinstance(node.value, ast.Call):
                kind, _ = self.symbols.value_kind(node.value)
                if kind == "optimizer":
                    for sub in ast.walk(node.value):
                        if isinstance(sub, ast.Call) and callee(sub) in ("parameters", "named_parameters") \
                                and isinstance(sub.func, ast.Attribute) and dotted(sub.func.value):
                            built.append((dotted(sub.func.value) or "", node.lineno, self.src.scope(node)))
        for model, line, scope in built:
            for node in self.src.assign_nodes:
                if node.lineno <= line or self.src.scope(node) is not scope:
                    continue
                if not any(dotted(t) == model for t in node.targets):
                    continue
                value = strip_self_returning(node.value)
                wraps_self = any(dotted(n) == model for n in ast.walk(value) if isinstance(n, ast.Name | ast.Attribute))
                kind, _ = self.symbols.value_kind(value)
                loaded = isinstance(value, ast.Call) and dotted(value.func) == "torch.load"
                if (kind == "model" or loaded) and not wraps_self and not any(
                        m == model and line < ln <= node.lineno + 10**6 and ln > node.lineno and s is scope
                        for m, ln, s in built):
                    self.emit(node.lineno, "GL125", f"{model} is rebuilt after its optimizer")
                    break

    # ---- GL129 ---------------------------------------------------------------------------------------------
    def log_zero(self) -> None:
        for call in self.calls:
            name = callee(call)
            if name != "log":
                continue
            if isinstance(call.func, ast.Attribute) and dotted(call.func.value) in ("torch", "np", "numpy", "math"):
                arg = call.args[0] if call.args else None
            elif isinstance(call.func, ast.Attribute):
                arg = call.func.value
            else:
                arg = call.args[0] if call.args else None
            if arg is None or self._guarded(arg):
                continue
            if not self._probability(arg, call):
                continue
            stmt = self.src.statement(call)
            text = ast.unparse(stmt).lower()
            if "loss" in text or "mean" in text or "sum" in text or "-" in text:
                self.emit(call.lineno, "GL129", "")

    def _guarded(self, arg: ast.AST) -> bool:
        for sub in ast.walk(arg):
            if isinstance(sub, ast.Call) and callee(sub) in ("clamp", "clip", "clamp_min", "maximum", "max"):
                return True
            if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Add):
                return True
            if isinstance(sub, ast.Name) and re.search(r"eps", sub.id, re.I):
                return True
        return False

    def _probability(self, arg: ast.AST, at: ast.AST, depth: int = 3) -> bool:
        if depth == 0:
            return False
        if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Sub):
            return self._probability(arg.right, at, depth)
        if self.activation(arg, at) in ("softmax", "sigmoid"):
            return True
        return False
