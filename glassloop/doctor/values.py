"""Where values come from: a per-file index of assignments, followed across functions, methods and classes.

`Source.value_of(name, at)` answers "what was last assigned to `name` before `at`", looking in order at the
enclosing function, the attributes the enclosing class sets on `self` (any method), the arguments passed to the
function at its call sites in the file (when they agree), its parameter defaults, and the module. Loop targets
are values too (`for xb, yb in loader` -> item 0/1 of what `loader` yields), so a rule can follow a target back
to the `TensorDataset(...)` it came from. Everything here is syntax only: no torch import, no execution.
"""

from __future__ import annotations

import ast

from glassloop.doctor.symbols import callee, dotted

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


class LoopItem(ast.expr):
    """Synthetic value of a `for` target: element `path` of one item of `iter`."""

    _fields = ()

    def __init__(self, iterable: ast.AST, path: tuple[int, ...], lineno: int) -> None:
        super().__init__()
        self.iterable, self.path, self.lineno, self.col_offset = iterable, path, lineno, 0


def _target_paths(target: ast.AST, path: tuple[int, ...] = ()) -> list[tuple[str, tuple[int, ...]]]:
    if isinstance(target, ast.Tuple | ast.List):
        out = []
        for i, elt in enumerate(target.elts):
            out += _target_paths(elt, path + (i,))
        return out
    name = dotted(target)
    return [(name, path)] if name else []


def parameters(fn: FunctionNode) -> list[str]:
    return [a.arg for a in fn.args.posonlyargs + fn.args.args]


class Source:
    """Per-file index: parents, scopes, and `name -> assignments` per scope."""

    def __init__(self, tree: ast.Module, nodes: list[ast.AST] | None = None) -> None:
        self.tree = tree
        self.nodes = nodes if nodes is not None else list(ast.walk(tree))
        self.parents: dict[ast.AST, ast.AST] = {}
        self.assigns: dict[tuple[int, str], list[tuple[int, ast.AST]]] = {}
        self.assign_nodes: list[ast.Assign] = []
        self.calls_by_name: dict[str, list[ast.Call]] = {}
        self._scopes: dict[ast.AST, ast.AST] = {}
        for node in self.nodes:
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        for node in self.nodes:
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                self._index_assign(node)
            elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                scope = id(self.scope(node))
                line = getattr(node, "lineno", None) or getattr(node.iter, "lineno", 0)
                for name, path in _target_paths(node.target):
                    item = LoopItem(node.iter, path, line)
                    self.parents[item] = node
                    self.assigns.setdefault((scope, name), []).append((line, item))
            elif isinstance(node, ast.Call):
                self.calls_by_name.setdefault(callee(node), []).append(node)
        for values in self.assigns.values():
            values.sort(key=lambda pair: pair[0])

    def _index_assign(self, node: ast.Assign | ast.AnnAssign) -> None:
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

    # ---- structure ---------------------------------------------------------------------------------------
    def scope(self, node: ast.AST) -> ast.AST:
        start = node
        if start in self._scopes:
            return self._scopes[start]
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, FunctionNode):
                break
        self._scopes[start] = node
        return node

    def enclosing(self, node: ast.AST, kind: type | tuple) -> ast.AST | None:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, kind):
                return node
        return None

    def module(self, node: ast.AST) -> ast.AST:
        return self.tree

    def statement(self, node: ast.AST) -> ast.AST:
        while not isinstance(node, ast.stmt) and node in self.parents:
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

    # ---- values ------------------------------------------------------------------------------------------
    def value_of(self, name: str, at: ast.AST) -> ast.AST | None:
        """The latest assignment to `name` before `at` (see the module docstring for the search order)."""
        line = getattr(at, "lineno", 10**9)
        scope = self.scope(at)
        local = [(ln, v) for ln, v in self.assigns.get((id(scope), name), []) if ln < line]
        if local:
            return local[-1][1]
        if isinstance(scope, FunctionNode):
            found = self._attribute(name, scope) if name.startswith("self.") else self._argument(name, scope)
            if found is not None:
                return found
            if (id(scope), name) in self.assigns:   # assigned later in the function (a loop): take the last
                return self.assigns[(id(scope), name)][-1][1]
        module = self.assigns.get((id(self.tree), name), [])
        before = [(ln, v) for ln, v in module if ln <= line or scope is not self.tree]
        if before:
            return before[-1][1]
        return module[-1][1] if module else None

    def _attribute(self, name: str, fn: FunctionNode) -> ast.AST | None:
        """`self.x` inside a method: what any method of the class assigns to it (`__init__` first)."""
        cls = self.enclosing(fn, ast.ClassDef)
        if not isinstance(cls, ast.ClassDef):
            return None
        methods = sorted((m for m in cls.body if isinstance(m, FunctionNode)), key=lambda m: m.name != "__init__")
        for method in methods:
            values = self.assigns.get((id(method), name))
            if values:
                return values[0][1] if method.name == "__init__" else values[-1][1]
        return None

    def _argument(self, name: str, fn: FunctionNode) -> ast.AST | None:
        """A parameter's value: the argument at every call site when they agree, else the default."""
        params = parameters(fn)
        if name not in params:
            return None
        cls = self.parents.get(fn)
        is_method = isinstance(cls, ast.ClassDef)
        if is_method and params and name == params[0]:
            return None
        index = params.index(name) - (1 if is_method else 0)
        sites = self.calls_by_name.get(cls.name if is_method and fn.name == "__init__" else fn.name, [])
        found: list[ast.AST] = []
        for call in sites:
            if is_method != isinstance(call.func, ast.Attribute) and fn.name != "__init__":
                continue
            value = next((k.value for k in call.keywords if k.arg == name), None)
            if value is None and 0 <= index < len(call.args) and not any(
                    isinstance(a, ast.Starred) for a in call.args[:index + 1]):
                value = call.args[index]
            if value is not None:
                found.append(value)
        if found and len({ast.dump(v) for v in found}) == 1:
            return found[0]
        if found:
            return None
        defaults = fn.args.defaults
        offset = len(params) - len(defaults)
        position = params.index(name)
        return defaults[position - offset] if position >= offset else None

    def follow(self, node: ast.AST | None, depth: int = 6) -> ast.AST | None:
        """Follow names to the expression that made them (a few hops); the last known node."""
        at = node
        while depth > 0 and isinstance(node, ast.Name | ast.Attribute) and dotted(node):
            value = self.value_of(dotted(node) or "", at)
            if value is None or value is node:
                return node
            at = node = value
            depth -= 1
        return node

    def loop_source(self, item: LoopItem) -> ast.AST | None:
        """The tensor a loop target stands for: `for x, y in DataLoader(TensorDataset(a, b))` -> a / b."""
        iterable, path = self.follow(item.iterable), item.path
        if isinstance(iterable, ast.Call) and callee(iterable) == "enumerate" and iterable.args and path[:1] == (1,):
            iterable, path = self.follow(iterable.args[0]), path[1:]
        if isinstance(iterable, ast.Call) and callee(iterable) == "DataLoader" and iterable.args:
            iterable = self.follow(iterable.args[0])
        if isinstance(iterable, ast.Call) and callee(iterable) == "TensorDataset" and len(path) == 1 \
                and path[0] < len(iterable.args):
            return iterable.args[path[0]]
        return None
