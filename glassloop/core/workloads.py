"""The workloads every test, example and benchmark uses, generated in code (no downloads): `linreg`, `house`,
`ssa`, `quadratic`, `wide` (lessons 000, 002 and 004; docs/benchmarks.md lists their shapes)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

Pair = tuple[torch.Tensor, torch.Tensor]


def linreg(n: int = 100, noise: float = 0.1, seed: int = 0) -> Pair:
    """y = 2x + 1 + small noise (lesson 000); `nn.Linear(1, 1)` learns w ~ 2, b ~ 1."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=generator) * 4 - 2
    return x, 2 * x + 1 + noise * torch.randn(n, 1, generator=generator)


def house() -> Pair:
    """Lesson 002: sizes in 1000 sqft -> prices in k$ (trained with SGD 0.01 for 100 epochs, it has not converged)."""
    return torch.tensor([[1.5], [2.0], [2.5]]), torch.tensor([[300.0], [400.0], [500.0]])


def ssa(n: int = 2000, seed: int = 42) -> tuple[Pair, Pair]:
    """Lesson 004's conjunction-risk data: [approach speed, miss distance, alert confidence, time to TCA] scaled by
    (15, 5, 1, 24); risk = sigmoid(0.5 x0 - 2 x1 + 0.3 x2 - 0.1 x3 - 2); the first 80% train, the rest validate."""
    generator = torch.Generator().manual_seed(seed)  # the numbers of torch.manual_seed(seed), no global side effect
    x = torch.rand(n, 4, generator=generator) * torch.tensor([15.0, 5.0, 1.0, 24.0])
    y = torch.sigmoid(0.5 * x[:, 0] - 2.0 * x[:, 1] + 0.3 * x[:, 2] - 0.1 * x[:, 3] - 2.0).unsqueeze(1)
    split = int(0.8 * n)
    return (x[:split], y[:split]), (x[split:], y[split:])


def quadratic(n: int = 200, seed: int = 0) -> Pair:
    """y = x^2 on [-2, 2] (lesson 000, exercise 6): a 2-layer ReLU net learns the curve."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=generator) * 4 - 2
    return x, x**2


def wide(n: int = 100_000, seed: int = 42) -> tuple[Pair, Pair]:
    """32 features, a nonlinear target with noise floor MSE 0.0025; for scaling and throughput."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 32, generator=generator)
    w, u = (torch.randn(32, generator=generator) / 32**0.5 for _ in range(2))
    noise = torch.randn(n, generator=generator)
    y = (x @ w + 0.5 * torch.sin(3 * x @ u) + 0.3 * x[:, 0] * x[:, 1] + 0.05 * noise).unsqueeze(1)
    split = int(0.8 * n)
    return (x[:split], y[:split]), (x[split:], y[split:])


def mlp(sizes: Sequence[int] = (4, 64, 64, 1), dropout: float = 0.0) -> nn.Sequential:
    """Linear layers with ReLU between them (and optional dropout after each hidden ReLU). The one MLP builder:
    `glassloop fit`, `gl.sweep`, the demo and the benchmarks all build their networks here."""
    sizes = list(sizes)
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def mlp_parameters(sizes: Sequence[int]) -> int:
    """The parameters of `mlp(sizes)`, counted without building it (a typo like 65536,65536 is 17 GB)."""
    sizes = list(sizes)
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
