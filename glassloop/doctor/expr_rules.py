"""Rules over loss expressions and the values feeding them (GL110-GL113, GL117, GL123, GL127, GL129, GL130)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from glassloop.doctor.flow import Event, Flow
from glassloop.doctor.models import Values
from glassloop.doctor.shapes import shape
from glassloop.doctor.symbols import (
    CLASSIFY_LOSSES,
    LOGIT_BCE,
    REGRESS_LOSSES,
    Symbols,
    callee,
    const,
    dotted,
    kwarg,
)
from glassloop.doctor.values import Source

Emit = Callable[..., None]
GAMMA = re.compile(r"gamma|discount", re.I)
CUTS = {"detach", "item", "numpy", "tolist"}
REWRAP = {"tensor", "Tensor", "as_tensor", "from_numpy", "FloatTensor", "array"}
BROADCASTING_LOSSES = {"MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "mse_loss", "l1_loss", "smooth_l1_loss",
                       "huber_loss"}


class ExprRules:
    def __init__(self, source: Source, values: Values, symbols: Symbols, flows: list[Flow], emit: Emit) -> None:
        self.src, self.values, self.symbols, self.flows, self.emit = source, values, symbols, flows, emit
        self.events: list[Event] = [e for f in flows for e in f.events]
        self.backwarded = {e.obj.split(".")[-1] for e in self.events if e.kind == "BW" and e.obj}
        self.calls = [n for n in source.nodes if isinstance(n, ast.Call)]

    def run(self) -> None:
        self.accumulate()
        self.unreduced()
        self.loss_inputs()
        self.dqn()
        self.log_zero()

    def loss_class(self, call: ast.Call) -> str:
        """`criterion(...)` -> 'CrossEntropyLoss' (through names, attributes and call-site arguments)."""
        if isinstance(call.func, ast.Call):
            return callee(call.func)
        name = callee(call)
        full = dotted(call.func) or ""
        if isinstance(call.func, ast.Attribute) and full.split(".")[0] in ("F", "torch", "nn", "functional"):
            return name
        built = self.src.follow(call.func) if full else None
        if isinstance(built, ast.Call) and built is not call:
            made = callee(built)
            if made.endswith("Loss"):
                return made
        if self.symbols.kind(full) == "loss":
            return self.symbols.classes.get(full) or self.symbols.classes.get(name, "") or ""
        return name

    # ---- GL110 ---------------------------------------------------------------------------------------------
    def accumulate(self) -> None:
        for flow in self.flows:
            for event in flow.events:
                if event.kind != "ACC" or event.ctx.no_grad is not False or not event.ctx.loops:
                    continue
                node = event.node
                if not isinstance(node, ast.AugAssign) or event.obj.split(".")[-1] in self.backwarded:
                    continue   # the sum itself is back-propagated: a loss composed of terms
                calls = {callee(n) for n in ast.walk(node.value) if isinstance(n, ast.Call)}
                if calls & (CUTS | {"float", "int"}):
                    continue
                names = {dotted(n) for n in ast.walk(node.value) if isinstance(n, ast.Name | ast.Attribute)}
                direct = any(isinstance(n, ast.Call) and self.symbols.kind(dotted(n.func)) == "loss"
                             for n in ast.walk(node.value))
                if not (direct or any(n and n.split(".")[-1] in self.backwarded for n in names)):
                    continue
                if self._across_steps(flow, event, node):
                    self.emit(node.lineno, "GL110", f"`{event.obj} += ...` keeps every step's graph")

    def _across_steps(self, flow: Flow, event: Event, node: ast.AugAssign) -> bool:
        """True when the accumulator survives optimizer steps (not reset inside the loop that steps)."""
        stepping = [lid for lid in event.ctx.loops if any(
            e.kind == "STEP" and lid in e.ctx.loops for e in flow.events)]
        if not stepping:
            return False
        loop = flow.loops[stepping[-1]].node
        name = dotted(node.target) or ""
        scope = self.src.scope(node)
        resets = [v for ln, v in self.src.assigns.get((id(scope), name), []) if ln < node.lineno]
        if not resets:
            return True   # initialised in __init__ or as a parameter: lives across steps
        reset_line = self.src.statement(resets[-1]).lineno
        inside = loop.lineno <= reset_line <= (loop.end_lineno or loop.lineno)
        loop_in_scope = self.src.scope(loop) is scope
        return loop_in_scope and not inside

    # ---- GL111 ---------------------------------------------------------------------------------------------
    def unreduced(self) -> None:
        for event in self.events:
            if event.kind != "BW" or event.info.get("loss") is None:
                continue
            node = event.info["loss"]
            if self._unreduced(node, node, 3):
                self.emit(event.line, "GL111", "")
                continue
            call = event.node
            if isinstance(call, ast.Call) and not call.args and not call.keywords and not event.info.get("scaled"):
                found = shape(self.values, node, node)
                if found and any(d != 1 for d in found):
                    dims = ", ".join("N" if d is None else str(d) for d in found)
                    self.emit(event.line, "GL111", f"backward() of a tensor of shape ({dims})")

    def _unreduced(self, node: ast.AST, at: ast.AST, depth: int) -> bool:
        if depth == 0 or node is None:
            return False
        calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
        if any(callee(c) in ("mean", "sum", "item", "norm") for c in calls):
            return False
        for call in calls:
            if const(kwarg(call, "reduction")) == "none":
                return True
            constructor = self.src.follow(call.func) if dotted(call.func) else None
            if isinstance(constructor, ast.Call) and const(kwarg(constructor, "reduction")) == "none":
                return True
        if isinstance(node, ast.Name | ast.Attribute):
            value = self.src.value_of(dotted(node) or "", at)
            return value is not None and self._unreduced(value, value, depth - 1)
        return False

    # ---- GL112 GL113 GL123 GL127 GL130 ---------------------------------------------------------------------
    def loss_inputs(self) -> None:
        for call in self.calls:
            cls = self.loss_class(call)
            if not cls or len(call.args) < 2:
                continue
            prediction, target = call.args[0], call.args[1]
            is_ce = cls in CLASSIFY_LOSSES
            if is_ce or cls in LOGIT_BCE:
                act = self.values.activation(prediction, call)
                if is_ce and act in ("softmax", "log_softmax"):
                    self.emit(call.lineno, "GL112", f"{act} output into {cls}")
                if cls in LOGIT_BCE and act == "sigmoid":
                    self.emit(call.lineno, "GL123", "")
            model = self.values.model_call(prediction, call)
            outputs = self.values.out_features(self.values.built(model)) if model is not None else None
            if is_ce:
                if outputs == 1:
                    self.emit(call.lineno, "GL113", "CrossEntropyLoss on a model with 1 output: the loss is always 0")
                elif self.values.origin(target, call) == "float" and outputs is not None:
                    self.emit(call.lineno, "GL113", "CrossEntropyLoss on a continuous target")
            elif cls in REGRESS_LOSSES and self.values.origin(target, call) == "int":
                high = self.values.randint_high(target, call)
                if (outputs or 1) > 1 or (high or 0) > 2:
                    self.emit(call.lineno, "GL113", f"{cls} on class labels")
            if cls in BROADCASTING_LOSSES:
                self._broadcast(call, prediction, target)
            if cls.endswith("Loss") or cls in CLASSIFY_LOSSES | REGRESS_LOSSES | LOGIT_BCE | {"nll_loss"}:
                self._detached_output(call)

    def _broadcast(self, call: ast.Call, prediction: ast.AST, target: ast.AST) -> None:
        """[N, 1] against [N] (either way round) broadcasts to [N, N]: every output meets every target."""
        pred, want = shape(self.values, prediction, call), shape(self.values, target, call)
        if not pred or not want:
            return
        for wide, narrow in ((pred, want), (want, pred)):
            if len(wide) == len(narrow) + 1 and wide[-1] == 1 and narrow[-1] != 1:
                self.emit(call.lineno, "GL130", f"prediction {_fmt(pred)} vs target {_fmt(want)}")
                return

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
            if not isinstance(node, ast.Name):
                return
            value = self.src.value_of(node.id, at)
            if value is None or not hasattr(value, "lineno"):
                return
            node, at = value, value

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
                if inner is not None and (self.values.model_of(inner, at) or any(
                        self.values.model_of(x, at) for x in ast.walk(inner) if isinstance(x, ast.Call | ast.Name))):
                    return sub
            if isinstance(sub, ast.Attribute) and sub.attr == "data" and self.values.model_of(sub.value, at):
                return sub
        return None

    # ---- GL117 ---------------------------------------------------------------------------------------------
    def dqn(self) -> None:
        for event in self.events:
            if event.kind != "FWD" or event.ctx.no_grad is not False:
                continue
            node, stmt = event.node, event.info.get("stmt")
            if node is None or stmt is None or self._detached_chain(stmt):
                continue
            targets = set(event.info.get("targets", ()))
            scope = self.src.scope(stmt)
            for mult in (n for n in ast.walk(scope) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult)):
                if self._bootstrap(mult, node, event, targets):
                    self.emit(event.line, "GL117", "")
                    return

    def _bootstrap(self, mult: ast.BinOp, node: ast.AST, event: Event, targets: set[str]) -> bool:
        """`gamma * target_net(s2)` (or a literal discount before a target network) with autograd recording."""
        sides = (mult.left, mult.right)
        for gamma_side, other in (sides, sides[::-1]):
            named = any(isinstance(n, ast.Name | ast.Attribute) and GAMMA.search(dotted(n) or "")
                        for n in ast.walk(gamma_side))
            literal = isinstance(gamma_side, ast.Constant) and isinstance(gamma_side.value, float) \
                and 0 < gamma_side.value < 1 and re.search(r"target|tgt", event.obj or "", re.I)
            if not (named or literal):
                continue
            inside = any(n is node for n in ast.walk(other))
            uses = {n.id for n in ast.walk(other) if isinstance(n, ast.Name)} & targets
            if (inside or (uses and mult.lineno >= event.line)) and not self._target_detached(mult):
                return True
        return False

    def _detached_chain(self, stmt: ast.AST) -> bool:
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

    # ---- GL129 ---------------------------------------------------------------------------------------------
    def log_zero(self) -> None:
        for call in self.calls:
            if callee(call) != "log":
                continue
            if isinstance(call.func, ast.Attribute) and dotted(call.func.value) in ("torch", "np", "numpy", "math"):
                arg = call.args[0] if call.args else None
            elif isinstance(call.func, ast.Attribute):
                arg = call.func.value
            else:
                arg = call.args[0] if call.args else None
            if arg is None or _guarded(arg) or not self._probability(arg, call):
                continue
            text = ast.unparse(self.src.statement(call)).lower()
            if "loss" in text or "mean" in text or "sum" in text or "-" in text:
                self.emit(call.lineno, "GL129", "")

    def _probability(self, arg: ast.AST, at: ast.AST) -> bool:
        if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Sub):
            arg = arg.right
        return self.values.activation(arg, at) in ("softmax", "sigmoid")


def _guarded(arg: ast.AST) -> bool:
    for sub in ast.walk(arg):
        if isinstance(sub, ast.Call) and callee(sub) in ("clamp", "clip", "clamp_min", "maximum", "max"):
            return True
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Add):
            return True
        if isinstance(sub, ast.Name) and re.search(r"eps", sub.id, re.I):
            return True
    return False


def _fmt(dims: tuple) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in dims) + "]"

