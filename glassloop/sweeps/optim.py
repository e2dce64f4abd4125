"""The optimizer of a sweep: SGD/Adam/AdamW over the `[K, P]` weights, every row with its own hyper-parameters.

Adam/AdamW run the kernel behind `torch.optim.Adam(fused=True)` (what gl.fit's named "adam" runs), once per
distinct (lr, weight decay, betas) with one row per configuration; stopped configurations are left out of every
call, so they are frozen exactly. SGD (and Adam where the fused kernel is missing) is written with tensor ops
following torch.optim's formulas, with per-configuration `[K, 1]` columns.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from glassloop.core.torch_private import fused_adam_rows, has_fused_adam

BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which gl.fit's named "adam" uses




class StackedOptimizer:
    """SGD/Adam/AdamW over `[K, P]` weights with each configuration's lr, weight decay, momentum and betas."""

    def __init__(self, name: str, flat: torch.Tensor, grad: torch.Tensor, configs: list[dict[str, Any]],
                 fused: bool = True) -> None:
        self.name = name.lower()
        self.flat, self.grad = flat.detach(), grad  # detached: in-place updates are not part of any graph
        self.k = len(configs)
        self.decays = [float(c["weight_decay"]) for c in configs]
        self.decay_column = self.column(self.decays)
        self.any_decay = any(self.decays)
        self.steps = 0
        self.fused = fused and has_fused_adam(self.name)
        adam = self.name != "sgd"
        self.exp_avg = torch.zeros_like(flat) if adam else None
        self.exp_avg_sq = torch.zeros_like(flat) if adam else None
        self.momentum_buffer: torch.Tensor | None = None
        self.step_tensor = torch.zeros((), dtype=torch.float32, device=flat.device)
        # Row views made once: the fused kernel takes lists of tensors, and a group is a pick from these lists.
        self.rows = [list(t.unbind(0)) for t in (self.flat, self.grad, self.exp_avg, self.exp_avg_sq)] \
            if self.fused else []
        self.active_rows = [True] * self.k
        self.active = self.column([1.0] * self.k)
        self.hyper: tuple[list[float], list[float], list[tuple[float, float]]] | None = None
        self.set_hyperparameters([float(c["lr"]) for c in configs], [float(c["momentum"]) for c in configs],
                                 [BETAS] * self.k)

    def column(self, values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=self.flat.dtype, device=self.flat.device).unsqueeze(1)

    def set_hyperparameters(self, lrs: list[float], momenta: list[float], betas: list[tuple[float, float]]) -> None:
        """Each row's lr, SGD momentum and Adam betas from the next step on (an LR schedule moves them)."""
        hyper = (list(lrs), list(momenta), [tuple(b) for b in betas])
        if hyper == self.hyper:
            return
        self.hyper = hyper
        self.lrs, self.momenta, self.betas = hyper
        self.lr_column, self.momentum_column = self.column(self.lrs), self.column(self.momenta)
        self.beta1_column = self.column([b[0] for b in self.betas])
        self.beta2_column = self.column([b[1] for b in self.betas])
        self.any_momentum = any(self.momenta)
        self.regroup()

    def set_active(self, active: list[bool]) -> None:
        """Only active configurations are updated from now on."""
        self.active_rows = list(active)
        self.active = self.column([float(a) for a in active])
        self.regroup()

    def regroup(self) -> None:
        self.effective_lr = self.lr_column * self.active
        self.groups: list[tuple[tuple[float, ...], list[list[torch.Tensor]]]] = []
        if not self.fused:
            return
        by_setting: dict[tuple[float, ...], list[int]] = {}
        for index in (i for i in range(self.k) if self.active_rows[i]):
            key = (self.lrs[index], self.decays[index], *self.betas[index])
            by_setting.setdefault(key, []).append(index)
        for key, members in by_setting.items():
            self.groups.append((key, [[rows[i] for i in members] for rows in self.rows]))

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        if self.fused:
            self.step_tensor += 1  # every active configuration has taken the same number of steps
            for (lr, decay, beta1, beta2), tensors in self.groups:
                fused_adam_rows(self.name, tensors, self.step_tensor, lr, beta1, beta2, decay, EPS)
            return
        p, g, lr = self.flat, self.grad, self.effective_lr
        if self.name == "adamw" and self.any_decay:
            p.mul_(1 - lr * self.decay_column)  # decoupled decay: p *= 1 - lr * wd
        elif self.any_decay:
            g = g.addcmul(p, self.decay_column)  # L2 in the gradient: g + wd * p
        if self.name == "sgd":
            if self.any_momentum:
                if self.momentum_buffer is None:
                    self.momentum_buffer = g.clone()  # torch: the first step's buffer is the gradient itself
                else:
                    self.momentum_buffer.mul_(self.momentum_column).add_(g)
                g = self.momentum_buffer
            p.addcmul_(g, lr, value=-1.0)
            return
        if len(set(self.betas)) == 1:  # one pair for all rows (the usual case): torch.optim's scalar formulas
            beta1, beta2 = self.betas[0]
            self.exp_avg.lerp_(g, 1 - beta1)
            self.exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            bias1, bias2 = 1 - beta1 ** self.steps, 1 - beta2 ** self.steps
            denom = (self.exp_avg_sq.sqrt() / math.sqrt(bias2)).add_(EPS)
            p.sub_(self.exp_avg / denom * (lr / bias1))
            return
        beta1, beta2 = self.beta1_column, self.beta2_column  # onecycle cycles beta1 per configuration
        self.exp_avg.lerp_(g, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(g, g * (1 - beta2))
        denom = (self.exp_avg_sq.sqrt() / (1 - beta2 ** self.steps).sqrt()).add_(EPS)
        p.sub_(self.exp_avg / denom * (lr / (1 - beta1 ** self.steps)))

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "step_tensor": self.step_tensor, "exp_avg": self.exp_avg,
                "exp_avg_sq": self.exp_avg_sq, "momentum_buffer": self.momentum_buffer}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        self.step_tensor.copy_(state["step_tensor"])
        for name in ("exp_avg", "exp_avg_sq"):
            if state[name] is not None:
                getattr(self, name).copy_(state[name])  # in place: the fused groups hold views of these
        buffer = state["momentum_buffer"]
        self.momentum_buffer = None if buffer is None else buffer.to(self.flat.device).clone()
