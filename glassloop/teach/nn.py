"""Neurons, layers and MLPs made of `Value`s: nn.Module's ideas at scalar size."""

from __future__ import annotations

import random
from collections.abc import Sequence

from glassloop.teach.value import Number, Value


class Module:
    """What every model offers: its knobs (`parameters()`) and a way to clear their gradients."""

    def parameters(self) -> list[Value]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """w · x + b, then ReLU unless `nonlinear=False` (the output neuron of a regression net)."""

    def __init__(self, n_inputs: int, nonlinear: bool = True, rng: random.Random | None = None) -> None:
        rng = rng or random.Random(0)
        self.w = [Value(rng.uniform(-1, 1)) for _ in range(n_inputs)]
        self.b = Value(0.0)
        self.nonlinear = nonlinear

    def __call__(self, x: Sequence[Value | Number]) -> Value:
        activation = self.b
        for wi, xi in zip(self.w, x, strict=True):
            activation = activation + wi * xi
        return activation.relu() if self.nonlinear else activation

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlinear else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """`n_outputs` neurons that all read the same inputs."""

    def __init__(self, n_inputs: int, n_outputs: int, nonlinear: bool = True, rng: random.Random | None = None):
        rng = rng or random.Random(0)
        self.neurons = [Neuron(n_inputs, nonlinear, rng) for _ in range(n_outputs)]

    def __call__(self, x: Sequence[Value | Number]) -> Value | list[Value]:
        out = [neuron(x) for neuron in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for neuron in self.neurons for p in neuron.parameters()]

    def __repr__(self) -> str:
        return f"Layer([{', '.join(str(n) for n in self.neurons)}])"


class MLP(Module):
    """Layers in sequence, ReLU between them, a linear last layer: `MLP(2, [16, 16, 1])`."""

    def __init__(self, n_inputs: int, n_outputs: Sequence[int], seed: int = 0) -> None:
        rng = random.Random(seed)
        sizes = [n_inputs, *n_outputs]
        self.layers = [
            Layer(sizes[i], sizes[i + 1], nonlinear=i != len(n_outputs) - 1, rng=rng) for i in range(len(n_outputs))
        ]

    def __call__(self, x: Sequence[Value | Number] | Value | Number) -> Value | list[Value]:
        out: Value | list[Value] | Sequence[Value | Number] = x if isinstance(x, Sequence) else [x]
        for layer in self.layers:
            out = layer(out if isinstance(out, Sequence) else [out])
        return out  # type: ignore[return-value]

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP([{', '.join(str(layer) for layer in self.layers)}])"
