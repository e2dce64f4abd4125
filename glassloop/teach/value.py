"""A scalar autograd engine: one number per node, the chain rule one node at a time (lesson 001).

Every operation makes a new `Value` that remembers its inputs (`_prev`) and a `_backward` closure that pushes
the output's gradient into the inputs' gradients. `backward()` visits the graph in reverse topological order and
calls each closure once. That is all `loss.backward()` does in PyTorch, at tensor size instead of scalar size.

Gradients *accumulate* on leaves like PyTorch's `.grad`: call `zero_grad()` (or `zero_grad(params)`) between
steps, or the next `backward()` adds to the old number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

Number = int | float


class Value:
    """A scalar with a gradient: `.data` is the number, `.grad` is d(output)/d(this) after `backward()`."""

    __slots__ = ("data", "grad", "_prev", "_op", "_backward", "label")

    def __init__(self, data: Number, _children: tuple[Value, ...] = (), _op: str = "", label: str = "") -> None:
        self.data = float(data)
        self.grad = 0.0
        self._prev = _children
        self._op = _op
        self._backward: Callable[[], None] | None = None  # leaves have nothing to push further
        self.label = label

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other: Value | Number) -> Value:
        other = as_value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward() -> None:
            self.grad += out.grad  # d(a+b)/da = 1
            other.grad += out.grad  # d(a+b)/db = 1

        out._backward = _backward
        return out

    def __mul__(self, other: Value | Number) -> Value:
        other = as_value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward() -> None:
            self.grad += other.data * out.grad  # d(ab)/da = b
            other.grad += self.data * out.grad  # d(ab)/db = a

        out._backward = _backward
        return out

    def __pow__(self, other: Value | Number) -> Value:
        if not isinstance(other, Value):
            exponent = float(other)
            out = Value(self.data**exponent, (self,), f"**{other:g}")

            def _backward() -> None:
                self.grad += exponent * self.data ** (exponent - 1) * out.grad  # d(a^n)/da = n a^(n-1)

            out._backward = _backward
            return out
        # a Value in the exponent: a^b = exp(b ln a), defined for a > 0
        out = Value(self.data**other.data, (self, other), "**")

        def _backward_both() -> None:
            self.grad += other.data * self.data ** (other.data - 1) * out.grad
            other.grad += out.data * math.log(self.data) * out.grad  # d(a^b)/db = a^b ln a

        out._backward = _backward_both
        return out

    def __rpow__(self, other: Number) -> Value:
        return as_value(other) ** self  # 2 ** w

    def __neg__(self) -> Value:
        return self * -1.0

    def __sub__(self, other: Value | Number) -> Value:
        return self + (-as_value(other))

    def __truediv__(self, other: Value | Number) -> Value:
        return self * as_value(other) ** -1.0

    # plain numbers on the left: 2 * w, 1 - w, 1 / w ...
    def __radd__(self, other: Number) -> Value:
        return self + other

    def __rmul__(self, other: Number) -> Value:
        return self * other

    def __rsub__(self, other: Number) -> Value:
        return as_value(other) - self

    def __rtruediv__(self, other: Number) -> Value:
        return as_value(other) / self

    # ------------------------------------------------------------------ functions
    def square(self) -> Value:
        """x², the squared loss's building block (lesson 001 adds exactly this)."""
        out = Value(self.data**2, (self,), "square")

        def _backward() -> None:
            self.grad += 2 * self.data * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward() -> None:
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad  # 0 at 0, like torch

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward() -> None:
            self.grad += (1 - t * t) * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward() -> None:
            self.grad += out.data * out.grad  # d(e^x)/dx = e^x

        out._backward = _backward
        return out

    def log(self) -> Value:
        out = Value(math.log(self.data), (self,), "log")

        def _backward() -> None:
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        # the two-branch form never overflows exp()
        if self.data >= 0:
            s = 1.0 / (1.0 + math.exp(-self.data))
        else:
            e = math.exp(self.data)
            s = e / (1.0 + e)
        out = Value(s, (self,), "sigmoid")

        def _backward() -> None:
            self.grad += s * (1 - s) * out.grad

        out._backward = _backward
        return out

    # ------------------------------------------------------------------ backward
    def backward(self) -> None:
        """Fill `.grad` of every node this one depends on with d(self)/d(node), accumulating on leaves.

        Interior nodes start from zero on every call (like PyTorch, which frees them), so calling `backward()`
        twice on the same graph adds the gradient to the leaves twice — no more, no less.
        """
        order = topological_order(self)
        for node in order:
            if node._prev:
                node.grad = 0.0
        self.grad += 1.0  # d(self)/d(self); interior roots were just reset, a leaf root accumulates
        for node in reversed(order):  # outputs before inputs: each node's grad is complete when it is used
            if node._backward is not None:
                node._backward()

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (the "clear the tape" beat)."""
        self.grad = 0.0

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"


def as_value(x: Value | Number) -> Value:
    """Wrap a plain number as a constant leaf so it can sit on either side of an operator."""
    return x if isinstance(x, Value) else Value(x)


def topological_order(root: Value) -> list[Value]:
    """Every node `root` depends on, inputs before outputs — with an explicit stack, not recursion.

    A recursive depth-first search hits Python's recursion limit (1000) on a long chain; this one does not care
    how deep the graph is. Each node appears once even when it is reused by several operations.
    """
    order: list[Value] = []
    visited: set[Value] = set()
    stack: list[tuple[Value, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)  # all its inputs are already in `order`
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        stack.extend((child, False) for child in node._prev if child not in visited)
    return order


def zero_grad(values: Iterable[Value]) -> None:
    """Clear `.grad` on every value (what `optimizer.zero_grad()` does for tensors)."""
    for value in values:
        value.grad = 0.0
