"""The DESIGN §4 workloads `ssa` and `wide`, built exactly as reference/performance.md describes."""

from __future__ import annotations

import torch
from torch import nn


def ssa_data(seed: int = 42, n: int = 2000) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Lesson 004's conjunction-risk data: 4 features scaled by (15, 5, 1, 24), first 80% train."""
    torch.manual_seed(seed)
    x = torch.rand(n, 4) * torch.tensor([15.0, 5.0, 1.0, 24.0])
    y = torch.sigmoid(0.5 * x[:, 0] - 2.0 * x[:, 1] + 0.3 * x[:, 2] - 0.1 * x[:, 3] - 2.0).unsqueeze(1)
    split = int(0.8 * n)
    return (x[:split], y[:split]), (x[split:], y[split:])


def wide_data(seed: int = 42, n: int = 100_000) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)
    x = torch.randn(n, 32)
    w, u = torch.randn(32) / 32**0.5, torch.randn(32) / 32**0.5
    y = (x @ w + 0.5 * torch.sin(3 * x @ u) + 0.3 * x[:, 0] * x[:, 1] + 0.05 * torch.randn(n)).unsqueeze(1)
    split = int(0.8 * n)
    return (x[:split], y[:split]), (x[split:], y[split:])


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


WORKLOADS = {
    "ssa": {"data": ssa_data, "sizes": (4, 64, 64, 1), "batch_size": 64, "epochs": 60},
    "wide": {"data": wide_data, "sizes": (32, 256, 256, 1), "batch_size": 256, "epochs": 5},
}
