"""The scalar engine against PyTorch's autograd, and the linreg loop in three representations."""

from __future__ import annotations

import math
import random
import sys

import pytest
import torch

from glassloop.teach import MLP, Layer, Neuron, Value, topological_order, zero_grad
from glassloop.teach.three_ways import max_difference, three_ways, train_numpy, train_torch, train_value

# ------------------------------------------------------------------------------------------ random graphs
# A program is a list of instructions over a pool of nodes (the leaves first). An operand is ("node", i) or
# ("const", c), so plain numbers appear on either side. The same program is replayed with `Value` and with
# float64 torch tensors; values and leaf gradients must agree.
BINARY = ["add", "sub", "mul", "div", "pow"]
UNARY = ["neg", "square", "relu", "tanh", "exp", "log", "sigmoid", "rpow"]


def _apply(op: str, a, b=None):
    """One instruction, written with the operators a learner would write, for Value and tensor alike."""
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / b
    if op == "pow":
        return a**b  # b is always a plain number here
    if op == "neg":
        return -a
    if op == "rpow":
        return 1.5**a  # a number raised to a node
    if op == "square":
        return a.square()
    if isinstance(a, torch.Tensor):
        return {"relu": torch.relu, "tanh": torch.tanh, "exp": torch.exp, "log": torch.log,
                "sigmoid": torch.sigmoid}[op](a)
    return getattr(a, op)()


def _shadow(op: str, a: float, b: float | None) -> float | None:
    """The operation on plain floats, or None when it would leave its domain or run into overflow or a kink."""
    if op == "div" and abs(b) < 0.2:
        return None
    if (op == "log" and a < 0.1) or (op == "pow" and not 0.1 < a < 20):
        return None
    if (op in ("exp", "rpow") and a > 6) or (op == "relu" and abs(a) < 1e-3):
        return None
    try:
        value = _apply(op, Value(a), None if b is None else Value(b)).data
    except (OverflowError, ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and abs(value) < 1e4 else None


def random_program(rng: random.Random, n_leaves: int, n_ops: int):
    leaves = [rng.uniform(-2, 2) for _ in range(n_leaves)]
    values = list(leaves)  # plain-float shadow of every node, to reject bad operations
    program = []
    while len(program) < n_ops:
        op = rng.choice(BINARY + UNARY)
        # prefer recent nodes (deep graphs) but reuse old ones often (shared subexpressions)
        i = rng.randrange(len(values)) if rng.random() < 0.4 else max(0, len(values) - 1 - rng.randrange(3))
        left, right = ("node", i), None
        if op == "pow":
            right = ("const", rng.choice([2, 3, 0.5, -1, 1.5, -0.5]))
        elif op in BINARY:
            kind = rng.random()
            right = ("node", rng.randrange(len(values)))
            if kind < 0.25:
                right = ("const", round(rng.uniform(-3, 3), 2) or 1.0)
            elif kind < 0.5:
                left, right = ("const", round(rng.uniform(-3, 3), 2) or 1.0), ("node", i)

        def number(operand):
            return None if operand is None else values[operand[1]] if operand[0] == "node" else operand[1]

        value = _shadow(op, number(left), number(right))
        if value is not None:
            program.append((op, left, right))
            values.append(value)
    return leaves, program


def run_program(leaves, program, make):
    nodes = [make(v) for v in leaves]
    for op, left, right in program:
        a = nodes[left[1]] if left[0] == "node" else left[1]
        b = None if right is None else (nodes[right[1]] if right[0] == "node" else right[1])
        nodes.append(_apply(op, a, b))
    output = nodes[-1]
    for node in nodes[len(leaves):-1]:  # every intermediate feeds the output: many paths to each leaf
        output = output + node * 0.1
    return nodes, output


@pytest.mark.parametrize("seed", range(4))
def test_random_graphs_match_torch_autograd(seed: int) -> None:
    rng = random.Random(seed)
    for case in range(150):
        leaves, program = random_program(rng, n_leaves=rng.randint(1, 4), n_ops=rng.randint(1, 25))
        value_nodes, value_out = run_program(leaves, program, Value)
        torch_nodes, torch_out = run_program(
            leaves, program, lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True))
        value_out.backward()
        torch_out.backward()
        where = f"seed {seed} case {case}: {program}"
        for v, t in zip(value_nodes, torch_nodes, strict=True):
            assert v.data == pytest.approx(t.item(), rel=1e-9, abs=1e-12), where
        for v, t in zip(value_nodes[: len(leaves)], torch_nodes[: len(leaves)], strict=True):
            expected = 0.0 if t.grad is None else t.grad.item()  # torch leaves an unused leaf's grad at None
            assert v.grad == pytest.approx(expected, rel=1e-7, abs=1e-9), where


def test_generator_really_covers_every_operation_and_reuse() -> None:
    rng = random.Random(0)
    ops, reused = set(), 0
    for _ in range(100):
        _, program = random_program(rng, 3, 20)
        ops |= {op for op, _, _ in program}
        used = [operand[1] for _, left, right in program for operand in (left, right)
                if operand is not None and operand[0] == "node"]
        reused += len(used) - len(set(used))
    assert ops == set(BINARY + UNARY)
    assert reused > 100


# ------------------------------------------------------------------------------------------ semantics
def test_reused_node_collects_gradient_from_every_use() -> None:
    x = Value(3.0)
    y = x * x + x  # x used three times
    y.backward()
    assert y.data == 12.0
    assert x.grad == 7.0  # 2x + 1
    a = Value(2.0)
    b = a + a
    b.backward()
    assert a.grad == 2.0


def test_plain_numbers_on_either_side() -> None:
    w = Value(2.0)
    for expression, data, grad in [
        (lambda: 1 - w, -1.0, -1.0),
        (lambda: 3 + w, 5.0, 1.0),
        (lambda: 3 * w, 6.0, 3.0),
        (lambda: 8 / w, 4.0, -2.0),  # -8 / w^2
        (lambda: w / 4, 0.5, 0.25),
        (lambda: 2**w, 4.0, 4.0 * math.log(2)),
        (lambda: w**3, 8.0, 12.0),
        (lambda: -w, -2.0, -1.0),
        (lambda: w - 5, -3.0, 1.0),
    ]:
        w.zero_grad()
        out = expression()
        out.backward()
        assert out.data == pytest.approx(data)
        assert w.grad == pytest.approx(grad)


def test_value_in_exponent_matches_torch() -> None:
    a, b = Value(1.7), Value(-0.8)
    (a**b).backward()
    ta = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(-0.8, dtype=torch.float64, requires_grad=True)
    (ta**tb).backward()
    assert (a.grad, b.grad) == pytest.approx((ta.grad.item(), tb.grad.item()))


def test_gradients_accumulate_like_torch_until_zero_grad() -> None:
    w = Value(-1.0)
    loss = (w * 2.0 - 4.0).square()
    loss.backward()
    loss.backward()  # same graph twice: the leaf gets the gradient twice, interior nodes are recomputed
    tw = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    tloss = (tw * 2.0 - 4.0).square()
    tloss.backward(retain_graph=True)
    tloss.backward()
    assert w.grad == tw.grad.item() == -48.0
    w.zero_grad()
    loss.backward()
    assert w.grad == -24.0
    zero_grad([w])
    assert w.grad == 0.0


def test_interior_gradients_are_fresh_on_every_backward() -> None:
    x = Value(2.0)
    hidden = x * 3.0
    out = hidden.square()
    out.backward()
    out.backward()
    assert hidden.grad == 12.0  # d(h^2)/dh = 2h, not accumulated across calls
    assert x.grad == 72.0  # 2 * 36


def test_100k_node_chain_backward_needs_no_recursion() -> None:
    limit = sys.getrecursionlimit()
    assert limit < 100_000  # the chain below would overflow any recursive topological sort
    x = Value(1.0)
    node = x
    for _ in range(100_000):
        node = node * 1.00001
    node.backward()
    assert x.grad == pytest.approx(1.00001**100_000, rel=1e-9)
    assert len(topological_order(node)) == 200_001  # 100k products + 100k constant leaves + x
    assert sys.getrecursionlimit() == limit


def test_topological_order_lists_each_node_once_inputs_first() -> None:
    a, b = Value(1.0), Value(2.0)
    c = a * b
    d = c + a
    e = d * c
    order = topological_order(e)
    assert len(order) == len(set(order)) == 5
    position = {node: i for i, node in enumerate(order)}
    for node in order:
        for child in node._prev:
            assert position[child] < position[node]


def test_lesson_001_numbers() -> None:
    x, y, w = Value(2.0), Value(4.0), Value(-1.0)
    y_hat = w * x
    loss = (y_hat - y).square()
    loss.backward()
    assert (y_hat.data, loss.data, w.grad) == (-2.0, 36.0, -24.0)
    w.data -= 0.1 * w.grad
    assert w.data == pytest.approx(1.4)
    assert (w * x - y).square().data == pytest.approx(1.44)


def test_functions_match_closed_forms() -> None:
    for f, value, derivative in [
        (lambda v: v.tanh(), math.tanh(0.3), 1 - math.tanh(0.3) ** 2),
        (lambda v: v.exp(), math.exp(0.3), math.exp(0.3)),
        (lambda v: v.log(), math.log(0.3), 1 / 0.3),
        (lambda v: v.sigmoid(), 1 / (1 + math.exp(-0.3)), math.exp(-0.3) / (1 + math.exp(-0.3)) ** 2),
        (lambda v: v.relu(), 0.3, 1.0),
        (lambda v: (-v).relu(), 0.0, 0.0),
    ]:
        v = Value(0.3)
        out = f(v)
        out.backward()
        assert out.data == pytest.approx(value)
        assert v.grad == pytest.approx(derivative)
    assert Value(-800.0).sigmoid().data == pytest.approx(0.0)  # no overflow in exp


# ------------------------------------------------------------------------------------------ nn
def test_mlp_matches_torch_forward_and_gradients() -> None:
    mlp = MLP(3, [4, 4, 1], seed=1)
    assert len(mlp.parameters()) == (3 * 4 + 4) + (4 * 4 + 4) + (4 + 1)
    inputs = [[0.5, -1.0, 2.0], [1.5, 0.2, -0.3], [-1.0, 1.0, 1.0], [0.3, 2.0, -1.5]]
    targets = [1.0, -2.0, 0.5, 3.0]
    loss = sum((mlp(x) - t).square() for x, t in zip(inputs, targets, strict=True)) / len(inputs)
    loss.backward()

    layers = []
    for layer in mlp.layers:
        linear = torch.nn.Linear(len(layer.neurons[0].w), len(layer.neurons)).double()
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=torch.float64))
            linear.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=torch.float64))
        layers += [linear, torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])  # no ReLU after the last layer
    tloss = torch.nn.functional.mse_loss(net(torch.tensor(inputs, dtype=torch.float64)).squeeze(1),
                                         torch.tensor(targets, dtype=torch.float64))
    tloss.backward()
    assert loss.data == pytest.approx(tloss.item(), rel=1e-12)
    for layer, linear in zip(mlp.layers, net[::2], strict=True):
        grads = [w.grad for n in layer.neurons for w in n.w]
        assert grads == pytest.approx(linear.weight.grad.flatten().tolist(), rel=1e-9, abs=1e-12)
        assert [n.b.grad for n in layer.neurons] == pytest.approx(linear.bias.grad.tolist(), rel=1e-9, abs=1e-12)

    mlp.zero_grad()
    assert all(p.grad == 0.0 for p in mlp.parameters())


def test_mlp_learns_a_small_curve() -> None:
    mlp = MLP(1, [6, 6, 1], seed=0)
    xs = [i / 4 - 1 for i in range(9)]
    ys = [x * x for x in xs]

    def mse() -> Value:
        return sum((mlp([x]) - y).square() for x, y in zip(xs, ys, strict=True)) / len(xs)

    first = mse().data
    for _ in range(40):
        loss = mse()
        mlp.zero_grad()
        loss.backward()
        for p in mlp.parameters():
            p.data -= 0.1 * p.grad
    assert mse().data < 0.1 * first


def test_neuron_and_layer_shapes() -> None:
    neuron = Neuron(3, nonlinear=False, rng=random.Random(0))
    assert len(neuron.parameters()) == 4
    assert isinstance(neuron([1.0, 2.0, 3.0]), Value)
    layer = Layer(2, 5)
    assert len(layer([1.0, 2.0])) == 5
    assert len(layer.parameters()) == 15


# ------------------------------------------------------------------------------------------ three ways
def test_three_representations_give_the_same_trajectory() -> None:
    value, numpy_, torch_ = train_value(), train_numpy(), train_torch()
    for other in (numpy_, torch_):
        assert other.losses == pytest.approx(value.losses, rel=1e-9)
        assert other.ws == pytest.approx(value.ws, rel=1e-9)
        assert other.bs == pytest.approx(value.bs, rel=1e-9)
    assert max_difference([value, numpy_, torch_]) < 1e-9
    w, b, loss = value.final
    assert w == pytest.approx(2.0, abs=0.02) and b == pytest.approx(1.0, abs=0.02)
    assert value.losses[0] > 100 * loss  # it trained


def test_three_ways_includes_fit_when_it_exists() -> None:
    import glassloop

    traces = three_ways(epochs=20)
    names = [t.name for t in traces]
    assert names[:3] == ["Value", "NumPy", "PyTorch"]
    if hasattr(glassloop, "fit"):
        assert names[3] == "gl.fit"
    assert max_difference(traces) < 1e-5
