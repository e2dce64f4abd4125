"""Rules over the ordered events of training loops (GL101-GL109, GL116, GL120-GL122, GL126, GL128)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from glassloop.doctor.flow import Event, Flow
from glassloop.doctor.models import Values
from glassloop.doctor.symbols import EPOCH_SCHEDULERS, Symbols, callee, dotted, kwarg

Emit = Callable[..., None]
VAL_NAME = re.compile(r"val|valid|test|dev|holdout|eval|^[a-z]{1,2}_?(v|te|tst)$", re.I)  # X_val, Xv, x_te
VAL_FUNC = re.compile(r"eval|valid|test", re.I)
NOT_TRAINED = re.compile(r"target|tgt|teacher|ema|frozen|pretrained", re.I)


def _last(name: str) -> str:
    return name.split(".")[-1]


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and (a == b or _last(a) == _last(b))


class LoopRules:
    def __init__(self, flow: Flow, symbols: Symbols, values: Values, emit: Emit) -> None:
        self.flow, self.symbols, self.values, self.emit = flow, symbols, values, emit
        self.events = flow.events
        self.by_loop: dict[int, list[int]] = {}
        for index, event in enumerate(self.events):
            for loop_id in event.ctx.loops:
                self.by_loop.setdefault(loop_id, []).append(index)

    def loop_events(self, loop_id: int) -> list[Event]:
        return [self.events[i] for i in self.by_loop.get(loop_id, [])]

    def training_loops(self) -> list[int]:
        with_both = [lid for lid, idx in self.by_loop.items()
                     if {"BW", "STEP"} <= {self.events[i].kind for i in idx}]
        return [lid for lid in with_both
                if not any(other != lid and lid in self.flow.loops[other].parents for other in with_both)]

    def run(self) -> None:
        training = self.training_loops()
        for loop_id in training:
            events = self.loop_events(loop_id)
            self.order_rules(loop_id, events)
            self.train_restored(loop_id, events)
        self.schedulers()
        self.validation(training)
        self.misc()

    # ---- GL101 GL102 GL103 GL104 GL122 GL126 ----------------------------------------------------------------
    def order_rules(self, loop_id: int, events: list[Event]) -> None:
        kinds = [e.kind for e in events]
        if "ZG" not in kinds:
            first_bw = next(e for e in events if e.kind == "BW")
            forwards = [e for e in events[:events.index(first_bw)] if e.kind == "FWD"]
            if forwards:   # zero_grad() belongs before the forward pass
                self.emit(forwards[0].line, "GL101", f"no zero_grad() before this forward pass; backward() at "
                                                     f"line {first_bw.line} adds to the old gradients")
            else:
                self.emit(first_bw.line, "GL101", "")
        for k, step in enumerate(events):
            if step.kind != "STEP":
                continue
            bws = [i for i in range(k) if events[i].kind == "BW"]
            if bws:
                for z in events[bws[-1] + 1:k]:
                    if z.kind == "ZG" and self._zg_matches(z.obj, step.obj):
                        self.emit(z.line, "GL102", "")
            elif "BW" in kinds[k + 1:]:
                self.emit(step.line, "GL103", "")
        for c, clip in enumerate(events):
            if clip.kind != "CLIP":
                continue
            before = [e for e in events[:c] if e.kind in ("BW", "STEP")]
            if before and before[-1].kind == "STEP":
                self.emit(clip.line, "GL104", "after optimizer.step()")
            elif not before and "BW" in kinds[c + 1:]:
                self.emit(clip.line, "GL104", "before loss.backward()")
            elif before and before[-1].kind == "BW" and before[-1].info.get("scaled") \
                    and not clip.info.get("accelerator"):
                last_bw = max(i for i in range(c) if events[i].kind == "BW")
                if "UNSCALE" not in kinds[last_bw:c]:
                    self.emit(clip.line, "GL122", "")
        position = self._position(events, loop_id)
        steps = [e for e in events if e.kind == "STEP"]
        if steps and all(self._accum_guarded(e, position) for e in steps):
            for z in events:
                if z.kind == "ZG" and not self._accum_guarded(z, position) \
                        and any(e.kind == "BW" and not self._accum_guarded(e, position) for e in events):
                    self.emit(z.line, "GL126", "")

    @staticmethod
    def _position(events: list[Event], loop_id: int) -> int:
        return events[0].ctx.loops.index(loop_id) if events else 0

    @staticmethod
    def _accum_guarded(event: Event, position: int) -> bool:
        return any(depth >= position + 1 and accum for depth, accum in event.ctx.guards)

    def _zg_matches(self, zg_obj: str, step_obj: str) -> bool:
        if self.symbols.kind(zg_obj) == "optimizer" and self.symbols.kind(step_obj) == "optimizer":
            return _same(zg_obj, step_obj)
        models = self.symbols.optimizer_models.get(step_obj) or self.symbols.optimizer_models.get(
            _last(step_obj))
        if models and self.symbols.kind(zg_obj) == "model":
            return any(_same(zg_obj, m) for m in models)
        return True

    # ---- GL109 ---------------------------------------------------------------------------------------------
    def train_restored(self, loop_id: int, events: list[Event]) -> None:
        trained = set()
        for e in events:
            if e.kind == "STEP":
                trained |= self.symbols.optimizer_models.get(e.obj, set()) | \
                    self.symbols.optimizer_models.get(_last(e.obj), set())
        chain = events[0].ctx.loops[: self._position(events, loop_id) + 1] if events else ()
        for outer in chain:
            outer_events = self.loop_events(outer)
            evals = [i for i, e in enumerate(outer_events) if e.kind == "EVAL"
                     and not NOT_TRAINED.search(e.obj)
                     and (not trained or any(_same(e.obj, m) for m in trained) or e.obj in ("", "self"))]
            if not evals:
                continue
            p = evals[-1]
            for e in outer_events[p + 1:] + outer_events[:p]:
                if e.kind == "TRAIN":
                    break
                if e.kind == "BW":
                    self._report_train_mode(outer, outer_events, outer_events[p])
                    return

    def _report_train_mode(self, outer: int, events: list[Event], evaluation: Event) -> None:
        """GL109 where model.train() belongs: the start of the training function, else of the epoch loop."""
        loop = self.flow.loops[outer]
        bw = next(e for e in events if e.kind == "BW")
        line = loop.node.body[0].lineno
        if len(bw.ctx.stack) > len(loop.stack):
            fn = self._function(bw.ctx.stack[len(loop.stack)], bw.ctx.cls)
            if fn is not None:
                line = _first_statement(fn)
        forwards = [e for e in events if e.kind == "FWD" and isinstance(e.node, ast.Call)]
        severity = self._mode_severity(forwards)
        self.emit(line, "GL109", f"model.eval() at line {evaluation.line} is still in effect here", severity)

    def _function(self, name: str, cls: str | None) -> ast.FunctionDef | None:
        if cls and name in self.symbols.methods.get(cls, {}):
            return self.symbols.methods[cls][name]
        if name in self.symbols.functions:
            return self.symbols.functions[name]
        owners = [m[name] for m in self.symbols.methods.values() if name in m]
        return owners[0] if len(owners) == 1 else None

    def _mode_severity(self, forwards: list[Event]) -> str | None:
        """`info` when every visible model has neither dropout nor batch-norm (train/eval changes nothing)."""
        verdicts = {self.values.has_mode_layers(self.values.built(e.node)) for e in forwards}
        return "info" if verdicts == {False} else None

    # ---- GL105 GL106 ---------------------------------------------------------------------------------------
    def schedulers(self) -> None:
        for sched in (e for e in self.events if e.kind == "SCHED" and e.ctx.loops):
            inner = sched.ctx.loops[-1]
            events = self.loop_events(inner)
            k = next(i for i, e in enumerate(events) if e is sched)
            if any(e.kind == "STEP" for e in events[k + 1:]) and not any(e.kind == "STEP" for e in events[:k]):
                self.emit(sched.line, "GL105", "")
            if self._epoch_scheduler(sched.obj) and any(
                    e.kind == "STEP" and e.ctx.loops and e.ctx.loops[-1] == inner for e in events):
                loop = self.flow.loops[inner]
                loader_loop = any(self.symbols.kind(n) == "loader" or "batch" in n.lower()
                                  for n in loop.iter_names)
                if len(sched.ctx.loops) >= 2 or loader_loop:
                    self.emit(sched.line, "GL106", self.symbols.classes.get(sched.obj, ""))

    def _epoch_scheduler(self, name: str) -> bool:
        cls = self.symbols.classes.get(name) or self.symbols.classes.get(_last(name)) or \
            self.symbols.classes.get(f"self.{_last(name)}", "")
        if cls in EPOCH_SCHEDULERS:
            return True
        call = self.symbols.calls.get(name) or self.symbols.calls.get(_last(name))
        if cls == "CosineAnnealingLR" and call is not None:
            t_max = kwarg(call, "T_max") or (call.args[1] if len(call.args) > 1 else None)
            text = ast.unparse(t_max).lower() if t_max is not None else ""
            return "epoch" in text and not re.search(r"len|step|iter|batch", text)
        return False

    # ---- GL107 GL108 ---------------------------------------------------------------------------------------
    def validation(self, training: list[int]) -> None:
        seen_regions: set = set()
        for index, fwd in enumerate(self.events):
            if fwd.kind != "FWD" or NOT_TRAINED.search(fwd.obj):
                continue
            loops = fwd.ctx.loops
            scope = self.loop_events(loops[-1]) if loops else self.events
            k = next(i for i, e in enumerate(scope) if e is fwd)
            if any(e.kind in ("BW", "STEP") for e in scope[k + 1:]):
                continue   # a training forward
            if not self._looks_like_validation(fwd):
                continue
            own_loop = bool(loops) and not any(e.kind in ("BW", "STEP") for e in scope)
            region = loops[-1] if own_loop else ("line", fwd.line)
            if region in seen_regions:
                continue
            seen_regions.add(region)
            line = self.flow.loops[loops[-1]].node.lineno if own_loop else fwd.line
            if fwd.ctx.no_grad is False:
                self.emit(line, "GL108", "")
            if not self._in_eval_mode(index, fwd.obj):
                where = self._eval_belongs(fwd, self.flow.loops[loops[-1]].node if own_loop else None, line)
                detail = f"the forward pass at line {fwd.line} runs in training mode" if where != fwd.line else ""
                self.emit(where, "GL107", detail, self._mode_severity([fwd]))

    def _eval_belongs(self, fwd: Event, loop: ast.AST | None, line: int) -> int:
        """Where model.eval() belongs: the top of the evaluation function, or before the block around the loop."""
        for name in reversed(fwd.ctx.stack):
            if VAL_FUNC.search(name):
                fn = self._function(name, fwd.ctx.cls)
                return _first_statement(fn) if fn is not None else line
        parents = self.values.src.parents
        node = loop if loop is not None else self.values.src.statement(fwd.node) if fwd.node is not None else None
        while node is not None and isinstance(parents.get(node), ast.With):
            node = parents[node]
        return getattr(node, "lineno", line)

    def _looks_like_validation(self, fwd: Event) -> bool:
        if any(VAL_FUNC.search(name) for name in fwd.ctx.stack):
            return True
        if fwd.ctx.loops and any(VAL_NAME.search(n) for n in self.flow.loops[fwd.ctx.loops[-1]].iter_names):
            return True
        node = fwd.node
        if isinstance(node, ast.Call):
            for arg in node.args:
                for sub in ast.walk(arg):
                    name = sub.id if isinstance(sub, ast.Name) else sub.attr if isinstance(sub, ast.Attribute) \
                        else ""
                    if name and VAL_NAME.search(name):
                        return True
        return False

    def _in_eval_mode(self, index: int, obj: str) -> bool:
        for event in reversed(self.events[:index]):
            if event.kind in ("EVAL", "TRAIN") and (_same(event.obj, obj) or event.obj in ("", "self")):
                return event.kind == "EVAL"
        return False

    # ---- GL116 GL120 GL121 GL128 ---------------------------------------------------------------------------
    def misc(self) -> None:
        for bw in (e for e in self.events if e.kind == "BW"):
            if bw.ctx.no_grad is True:
                self.emit(bw.line, "GL116", "")
            if any(self._last_loss_only(bw, loss) for loss in self.events):
                self.emit(bw.line, "GL121", "only the last computed loss is back-propagated")
        for step in (e for e in self.events if e.kind == "STEP" and e.obj != "manual"):
            for bw in self.events:
                if bw.kind == "BW" and len(bw.ctx.loops) > len(step.ctx.loops) \
                        and bw.ctx.loops[: len(step.ctx.loops)] == step.ctx.loops:
                    inner = bw.ctx.loops[len(step.ctx.loops)]
                    inner_events = self.loop_events(inner)
                    if any(e.kind == "ZG" for e in inner_events) and not any(e.kind == "STEP" for e in inner_events):
                        self.emit(step.line, "GL121", "zero_grad() runs in the inner loop, step() after it")
                        break
        self.gan()

    def _last_loss_only(self, bw: Event, loss: Event) -> bool:
        """The loss is (re)assigned in a deeper loop of the same function than its backward(): last batch only.
        An accumulation (`loss += ...`) or a helper's own `loss` (evaluate()) is not that."""
        if loss.kind not in ("LOSS", "FWD") or not bw.obj or bw.obj not in loss.info.get("targets", ()):
            return False
        if loss.ctx.stack != bw.ctx.stack or loss.ctx.no_grad is not False:
            return False
        stmt = loss.info.get("stmt")
        if isinstance(stmt, ast.AugAssign) or isinstance(stmt, ast.Assign) and any(
                isinstance(n, ast.Name) and n.id == bw.obj for n in ast.walk(stmt.value)):
            return False
        return len(loss.ctx.loops) > len(bw.ctx.loops) and loss.ctx.loops[: len(bw.ctx.loops)] == bw.ctx.loops \
            and not any(e.kind == "BW" and e.ctx.loops == loss.ctx.loops for e in self.events)

    # ---- GL128 ---------------------------------------------------------------------------------------------
    def gan(self) -> None:
        """A GAN by data flow: the discriminator D sees G's output (undetached) in one call and data no model
        produced in another call at the same argument position, and D's own optimizer steps after."""
        produced: dict[str, tuple[Event, bool]] = {}   # name -> (forward that made it, detached)
        seen: dict[tuple[str, int], set[bool]] = {}    # (model, position) -> {fed by another model's output?}
        fed_events: list[tuple[int, Event, int]] = []
        for index, event in enumerate(self.events):
            if event.kind != "FWD" or not isinstance(event.node, ast.Call):
                continue
            for position, arg in enumerate(event.node.args):
                source = self._generated(arg, event, produced)
                seen.setdefault((_last(event.obj), position), set()).add(source is not None)
                if source is not None and event.ctx.no_grad is False and source.ctx.no_grad is False:
                    fed_events.append((index, event, position))
            stmt = event.info.get("stmt")
            detached = event.ctx.no_grad is not False or (stmt is not None and any(
                isinstance(n, ast.Call) and callee(n) == "detach" for n in ast.walk(stmt)))
            for target in event.info.get("targets", ()):
                produced[target] = (event, detached)
        for index, event, position in fed_events:
            if False in seen.get((_last(event.obj), position), set()) and self._steps_model(index, event):
                self.emit(event.line, "GL128", "")

    def _generated(self, arg: ast.AST, event: Event, produced: dict[str, tuple[Event, bool]]) -> Event | None:
        """The other model's forward whose undetached output `arg` is, if any."""
        if isinstance(arg, ast.Name) and arg.id in produced:
            source, detached = produced[arg.id]
            return None if detached or _same(source.obj, event.obj) else source
        if isinstance(arg, ast.Call) and self.symbols.kind(dotted(arg.func) or callee(arg)) == "model" \
                and not _same(callee(arg), event.obj):
            return event
        return None

    def _steps_model(self, index: int, event: Event) -> bool:
        later = self.events[index + 1:]
        bw = next((i for i, e in enumerate(later) if e.kind == "BW"), None)
        step = next((e for e in later[bw:] if e.kind == "STEP"), None) if bw is not None else None
        if step is None:
            return False
        models = self.symbols.optimizer_models.get(step.obj) or self.symbols.optimizer_models.get(_last(step.obj), set())
        return any(_same(m, event.obj) for m in models)

def _first_statement(fn: ast.FunctionDef) -> int:
    body = fn.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        return body[1].lineno   # after the docstring
    return body[0].lineno
