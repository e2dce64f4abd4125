"""Training-loop events in execution order, with helper functions and methods inlined.

A root (the module body, or a function nobody in the file calls) is walked statement by statement. Each
call that matters becomes an `Event` (zero_grad, backward, step, clip, ...) that remembers the loops, the
`if` guards and the no_grad state around it. Calls to functions and methods defined in the same file are
followed (arguments substituted for parameters), so `train_one_epoch(model, loader, opt)` called from the
epoch loop is analysed as if it were written there.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field

from glassloop.doctor.symbols import Symbols, callee, const, dotted

NO_GRAD = {"no_grad", "inference_mode"}
CLIPS = {"clip_grad_norm_", "clip_grad_norm", "clip_grad_value_"}
RESERVED = {"train", "eval", "step", "zero_grad", "backward", "forward", "parameters", "to", "cuda", "cpu",
            "state_dict", "load_state_dict", "apply", "item", "detach", "append", "update"}
MAX_DEPTH = 6
MAX_EVENTS = 20000


@dataclass(frozen=True)
class Ctx:
    loops: tuple[int, ...] = ()
    guards: tuple[tuple[int, bool], ...] = ()   # (number of loops around the `if`, test looks like "every k")
    no_grad: bool | None = False                # None: set_grad_enabled(<unknown>)
    env: tuple[tuple[str, str], ...] = ()       # parameter -> argument name
    stack: tuple[str, ...] = ()                 # functions being inlined (names)
    cls: str | None = None


@dataclass
class Event:
    kind: str      # ZG BW STEP CLIP UNSCALE SCHED EVAL TRAIN FWD LOSS ACC
    line: int
    obj: str
    ctx: Ctx
    node: ast.AST | None = None
    info: dict = field(default_factory=dict)


@dataclass
class Loop:
    id: int
    node: ast.AST
    parents: tuple[int, ...]
    iter_names: set[str]
    stack: tuple[str, ...]


def _names(node: ast.AST | None) -> set[str]:
    out: set[str] = set()
    if node is None:
        return out
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            out.add(sub.attr)
            full = dotted(sub)
            if full:
                out.add(full)
    return out


def _is_accum_test(test: ast.AST) -> bool:
    for sub in ast.walk(test):
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Mod):
            return True
        if isinstance(sub, ast.Name | ast.Attribute) and "accum" in (dotted(sub) or "").lower():
            return True
    return False


def _mentions_grad(node: ast.AST) -> bool:
    return any(isinstance(s, ast.Attribute) and s.attr == "grad" for s in ast.walk(node))


class Flow:
    def __init__(self, symbols: Symbols) -> None:
        self.symbols = symbols
        self.events: list[Event] = []
        self.loops: dict[int, Loop] = {}
        self._next_loop = 0
        self._local_defs: dict[str, ast.FunctionDef] = {}

    # ---- names -------------------------------------------------------------------------------------------
    def resolve(self, node: ast.AST | None, ctx: Ctx) -> str:
        name = dotted(node) if node is not None else None
        if not name:
            return ""
        head, _, rest = name.partition(".")
        env = dict(ctx.env)
        if head in env:
            head = env[head]
        return f"{head}.{rest}" if rest else head

    def kind(self, name: str) -> str | None:
        return self.symbols.kind(name)

    def add(self, kind: str, node: ast.AST, obj: str, ctx: Ctx, **info) -> None:
        if len(self.events) < MAX_EVENTS:
            self.events.append(Event(kind, getattr(node, "lineno", 0), obj, ctx, node, info))

    # ---- statements --------------------------------------------------------------------------------------
    def run(self, body: list[ast.stmt], ctx: Ctx) -> None:
        self.stmts(body, ctx)

    def stmts(self, body: list[ast.stmt], ctx: Ctx) -> None:
        for stmt in body:
            self.stmt(stmt, ctx)

    def stmt(self, node: ast.stmt, ctx: Ctx) -> None:
        if isinstance(node, ast.For | ast.AsyncFor | ast.While):
            head = node.iter if isinstance(node, ast.For | ast.AsyncFor) else node.test
            self.expr(head, ctx, node)
            loop_id = self._next_loop
            self._next_loop += 1
            self.loops[loop_id] = Loop(loop_id, node, ctx.loops, _names(head), ctx.stack)
            self.stmts(node.body, dataclasses.replace(ctx, loops=ctx.loops + (loop_id,)))
            self.stmts(node.orelse, ctx)
        elif isinstance(node, ast.If):
            self._if(node, ctx)
        elif isinstance(node, ast.With | ast.AsyncWith):
            inner = ctx
            for item in node.items:
                self.expr(item.context_expr, ctx, node)
                state = self._grad_state(item.context_expr)
                if state != "same":
                    inner = dataclasses.replace(inner, no_grad=state)
            self.stmts(node.body, inner)
        elif isinstance(node, ast.Try):
            self.stmts(node.body, ctx)
            for handler in node.handlers:
                self.stmts(handler.body, ctx)
            self.stmts(node.orelse, ctx)
            self.stmts(node.finalbody, ctx)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            self._local_defs[node.name] = node   # closures (LBFGS) and local helpers
        elif isinstance(node, ast.ClassDef):
            return
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            self._assign(node, ctx)
        elif isinstance(node, ast.AugAssign):
            self.expr(node.value, ctx, node)
            if isinstance(node.op, ast.Sub | ast.Add) and _mentions_grad(node.value) \
                    and not (isinstance(node.target, ast.Attribute) and node.target.attr == "grad"):
                self.add("STEP", node, "manual", ctx)
            elif isinstance(node.op, ast.Add):
                self.add("ACC", node, dotted(node.target) or "", ctx)
        elif isinstance(node, ast.Expr | ast.Return):
            if node.value is not None:
                self.expr(node.value, ctx, node)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child, ctx, node)

    def _if(self, node: ast.If, ctx: Ctx) -> None:
        self.expr(node.test, ctx, node)
        test_src = ast.dump(node.test)
        if "__name__" in test_src and "__main__" in test_src:
            self.stmts(node.body, ctx)
            return
        guard = (len(ctx.loops), _is_accum_test(node.test))
        inner = dataclasses.replace(ctx, guards=ctx.guards + (guard,))
        start = len(self.events)
        self.stmts(node.body, inner)
        middle = len(self.events)
        self.stmts(node.orelse, inner)
        # what both branches do happens unconditionally
        both = ({e.kind for e in self.events[start:middle]} & {e.kind for e in self.events[middle:]})
        position = len(ctx.guards)
        for event in self.events[start:]:
            if event.kind in both and len(event.ctx.guards) > position:
                guards = event.ctx.guards[:position] + event.ctx.guards[position + 1:]
                event.ctx = dataclasses.replace(event.ctx, guards=guards)

    def _assign(self, node: ast.Assign | ast.AnnAssign, ctx: Ctx) -> None:
        if node.value is not None:
            self.expr(node.value, ctx, node)
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr == "grad" and const(node.value) is None \
                    and isinstance(node.value, ast.Constant):
                self.add("ZG", node, "*", ctx)   # p.grad = None
            elif isinstance(target, ast.Attribute) and target.attr == "data" and node.value is not None \
                    and _mentions_grad(node.value):
                self.add("STEP", node, "manual", ctx)

    @staticmethod
    def _grad_state(expr: ast.AST) -> bool | None | str:
        if not isinstance(expr, ast.Call):
            return "same"
        name = callee(expr)
        if name in NO_GRAD:
            return True
        if name == "enable_grad":
            return False
        if name == "set_grad_enabled":
            value = const(expr.args[0]) if expr.args else None
            return (not value) if isinstance(value, bool) else None
        return "same"

    # ---- expressions -------------------------------------------------------------------------------------
    def expr(self, node: ast.AST, ctx: Ctx, stmt: ast.AST) -> None:
        """Post-order over calls: inner calls run first (model(x) before criterion(...))."""
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                self.expr(node.func.value, ctx, stmt)
            for arg in node.args:
                self.expr(arg, ctx, stmt)
            for keyword in node.keywords:
                self.expr(keyword.value, ctx, stmt)
            self.call(node, ctx, stmt)
            return
        for child in ast.iter_child_nodes(node):
            self.expr(child, ctx, stmt)

    def call(self, node: ast.Call, ctx: Ctx, stmt: ast.AST) -> None:
        name = callee(node)
        func = node.func
        receiver = self.resolve(func.value, ctx) if isinstance(func, ast.Attribute) else ""
        receiver_kind = self.kind(receiver) if receiver else None
        targets = _assigned(stmt)
        if isinstance(func, ast.Attribute):
            if self._inline_method(node, receiver, receiver_kind, ctx):
                return
            if name == "zero_grad":
                self.add("ZG", node, receiver, ctx)
            elif name == "zero_" and "grad" in (dotted(func.value) or "").split("."):
                self.add("ZG", node, "*", ctx)
            elif name == "backward":
                if receiver_kind == "accelerator" or receiver.split(".")[0] == "torch":
                    scaled, loss_node = False, (node.args[0] if node.args else None)
                else:
                    scaled = isinstance(func.value, ast.Call) and callee(func.value) == "scale"
                    loss_node = func.value.args[0] if scaled and func.value.args else func.value
                self.add("BW", node, self.resolve(loss_node, ctx), ctx, scaled=scaled, loss=loss_node)
            elif name == "step":
                self._step(node, receiver, receiver_kind, ctx)
            elif name in CLIPS:
                self.add("CLIP", node, receiver, ctx, accelerator=receiver_kind == "accelerator",
                         value=name == "clip_grad_value_")
            elif name == "unscale_":
                self.add("UNSCALE", node, receiver, ctx)
            elif name == "eval" and not node.args:
                self.add("EVAL", node, receiver, ctx)
            elif name == "train" and (not node.args or const(node.args[0]) is True):
                self.add("TRAIN", node, receiver, ctx)
            elif name == "train" and const(node.args[0]) is False:
                self.add("EVAL", node, receiver, ctx)
            elif name in ("sub_", "add_", "copy_") and any(_mentions_grad(a) for a in node.args):
                self.add("STEP", node, "manual", ctx)
            elif name == "forward" and receiver_kind == "model":
                self.add("FWD", node, receiver, ctx, targets=targets, stmt=stmt)
            else:
                full = self.resolve(func, ctx)
                self._plain_call(node, name, full, ctx, stmt, targets)
        elif isinstance(func, ast.Name):
            if name in CLIPS:
                self.add("CLIP", node, "", ctx, accelerator=False, value=name == "clip_grad_value_")
                return
            if self._inline_function(node, name, ctx):
                return
            self._plain_call(node, name, self.resolve(func, ctx), ctx, stmt, targets)

    def _plain_call(self, node: ast.Call, name: str, full: str, ctx: Ctx, stmt: ast.AST,
                    targets: list[str]) -> None:
        kind = self.kind(full)
        if kind == "model" and name not in ("parameters", "named_parameters", "state_dict"):
            if isinstance(node.func, ast.Name) or self.symbols.kinds.get(full) == "model" \
                    or full.startswith("self.") and kind == "model":
                self.add("FWD", node, full, ctx, targets=targets, stmt=stmt)
        elif kind == "loss" or name in ("mse_loss", "cross_entropy", "l1_loss", "nll_loss", "huber_loss",
                                        "binary_cross_entropy", "binary_cross_entropy_with_logits",
                                        "smooth_l1_loss"):
            self.add("LOSS", node, full, ctx, targets=targets, stmt=stmt)

    def _step(self, node: ast.Call, receiver: str, receiver_kind: str | None, ctx: Ctx) -> None:
        if receiver_kind == "scaler" or receiver_kind == "accelerator":
            obj = self.resolve(node.args[0], ctx) if node.args else receiver
            self.add("STEP", node, obj, ctx)
        elif receiver_kind == "optimizer":
            closure = node.args[0] if node.args else None
            closure_name = closure.id if isinstance(closure, ast.Name) else None
            if closure_name and closure_name in self._local_defs and len(ctx.stack) < MAX_DEPTH:
                fn = self._local_defs[closure_name]
                self.stmts(fn.body, dataclasses.replace(ctx, stack=ctx.stack + (fn.name,)))
            self.add("STEP", node, receiver, ctx)
        elif receiver_kind == "scheduler":
            self.add("SCHED", node, receiver, ctx)

    # ---- inlining ----------------------------------------------------------------------------------------
    def _inline(self, fn: ast.FunctionDef, call: ast.Call, ctx: Ctx, bound_self: str | None, cls: str | None):
        if fn.name in ctx.stack or len(ctx.stack) >= MAX_DEPTH:
            return
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        env = dict(ctx.env)
        new_env: dict[str, str] = {}
        if bound_self is not None and params:
            new_env[params[0]] = bound_self
            params = params[1:]
        for param, arg in zip(params, call.args):
            name = self.resolve(arg, ctx)
            if name:
                new_env[param] = name
        for keyword in call.keywords:
            name = self.resolve(keyword.value, ctx)
            if keyword.arg and name:
                new_env[keyword.arg] = name
        no_grad = ctx.no_grad
        for decorator in fn.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            last = (dotted(target) or "").split(".")[-1]
            if last in NO_GRAD:
                no_grad = True
        del env
        inner = dataclasses.replace(ctx, env=tuple(new_env.items()), stack=ctx.stack + (fn.name,),
                                    no_grad=no_grad, cls=cls)
        saved = self._local_defs
        self._local_defs = dict(saved)
        self.stmts(fn.body, inner)
        self._local_defs = saved

    def _inline_function(self, call: ast.Call, name: str, ctx: Ctx) -> bool:
        fn = self._local_defs.get(name) or self.symbols.functions.get(name)
        if fn is None:
            return False
        self._inline(fn, call, ctx, None, None)
        return True

    def _inline_method(self, call: ast.Call, receiver: str, receiver_kind: str | None, ctx: Ctx) -> bool:
        name = callee(call)
        cls = None
        if receiver in ("self", "") and ctx.cls and name in self.symbols.methods.get(ctx.cls, {}):
            cls = ctx.cls
        elif receiver or isinstance(call.func.value, ast.Call):
            if isinstance(call.func.value, ast.Call):
                cls_name = self.symbols.value_kind(call.func.value)[1]
            else:
                cls_name = self.symbols.classes.get(receiver) or self.symbols.classes.get(receiver.split(".")[-1])
            if cls_name in self.symbols.methods and name in self.symbols.methods[cls_name]:
                if cls_name in self.symbols.module_classes and name in RESERVED:
                    return False
                cls = cls_name
            elif name not in RESERVED and receiver_kind not in ("optimizer", "scheduler", "loader", "scaler"):
                owners = [c for c, methods in self.symbols.methods.items()
                          if name in methods and c not in self.symbols.module_classes]
                if len(owners) == 1:
                    cls = owners[0]
        if cls is None:
            return False
        self._inline(self.symbols.methods[cls][name], call, ctx, "self", cls)
        return True


def _assigned(stmt: ast.AST) -> list[str]:
    if isinstance(stmt, ast.Assign):
        out = []
        for target in stmt.targets:
            for sub in ast.walk(target):
                name = dotted(sub) if isinstance(sub, ast.Name | ast.Attribute) else None
                if name:
                    out.append(name)
        return out
    if isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        name = dotted(stmt.target)
        return [name] if name else []
    return []


def roots(tree: ast.Module, symbols: Symbols) -> list[tuple[list[ast.stmt], Ctx]]:
    """The module body, plus every function or method nobody in the file calls (entry points)."""
    out: list[tuple[list[ast.stmt], Ctx]] = [(tree.body, Ctx())]
    for name, fn in symbols.functions.items():
        if name not in symbols.called_names:
            out.append((fn.body, _fn_ctx(fn, None)))
    for cls_name, methods in symbols.methods.items():
        for name, fn in methods.items():
            if name not in symbols.called_names and name != "__init__" and not (
                    cls_name in symbols.module_classes and name == "forward"):
                out.append((fn.body, _fn_ctx(fn, cls_name)))
    return out


def _fn_ctx(fn: ast.FunctionDef, cls: str | None) -> Ctx:
    no_grad = any((dotted(d.func if isinstance(d, ast.Call) else d) or "").split(".")[-1] in NO_GRAD
                  for d in fn.decorator_list)
    return Ctx(stack=(fn.name,), cls=cls, no_grad=no_grad)
