"""Per-configuration LR schedules, by the names gl.fit knows, on torch's own scheduler classes.

Each distinct schedule gets a proxy optimizer: the torch optimizer gl.fit would build for that configuration
(same class, lr, momentum, weight decay), holding one tensor it never updates. `make_scheduler` builds on it the
very scheduler gl.fit builds, so the factors are torch's, step for step. After every scheduler step the proxies'
lr (and the momentum or betas that `onecycle` cycles) become the stacked optimizer's per-row values.
Configurations with the same lr, momentum and weight decay share a proxy, since their schedules are identical
(2 lrs x 16 seeds step 2 schedulers, not 32); `plateau` follows each configuration's own val loss, so it has one
per configuration.
"""

from __future__ import annotations

from typing import Any

import torch

from glassloop.core.building import make_optimizer, make_scheduler, steps_per_batch
from glassloop.sweeps.optim import BETAS


class StackedSchedules:
    """The schedules of K configurations; `hyperparameters()` reads each row's current lr, momentum, betas."""

    def __init__(self, name: str, optimizer: str, configs: list[dict[str, Any]], epochs: int,
                 steps_per_epoch: int) -> None:
        self.name = name
        self.per_batch = steps_per_batch(None, name)  # onecycle, warmup_cosine: after every optimizer step
        self.plateau = name == "plateau"
        self.owner: list[int] = []  # configuration -> index of its proxy
        self.proxies: list[torch.optim.Optimizer] = []
        self.schedulers: list[Any] = []
        keys: dict[Any, int] = {}
        for index, config in enumerate(configs):
            key = index if self.plateau else (config["lr"], config["momentum"], config["weight_decay"])
            if key not in keys:
                keys[key] = len(self.proxies)
                proxy = make_optimizer(optimizer, [torch.zeros(1, requires_grad=True)], config["lr"],
                                       config["momentum"], config["weight_decay"])
                self.schedulers.append(make_scheduler(name, proxy, epochs, steps_per_epoch))
                proxy.step()  # no gradients, so no update; torch then knows the optimizer steps before the schedule
                self.proxies.append(proxy)
            self.owner.append(keys[key])

    def hyperparameters(self) -> tuple[list[float], list[float], list[tuple[float, float]]]:
        groups = [proxy.param_groups[0] for proxy in self.proxies]
        mine = [groups[owner] for owner in self.owner]
        return ([float(g["lr"]) for g in mine], [float(g.get("momentum", 0.0)) for g in mine],
                [tuple(g.get("betas", BETAS)) for g in mine])

    def step_batch(self) -> None:
        if self.per_batch:
            for scheduler in self.schedulers:
                scheduler.step()

    def step_epoch(self, monitored: list[float], stepping: list[bool]) -> None:
        """Per-epoch schedules; `plateau` gets each configuration's val loss (train loss without val data)."""
        if self.per_batch:
            return
        if self.plateau:
            for index, scheduler in enumerate(self.schedulers):
                if stepping[index]:
                    scheduler.step(monitored[index])
            return
        for scheduler in self.schedulers:
            scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        # The proxies' param groups carry the current lr (a scheduler's own state does not).
        return {"proxies": [p.state_dict()["param_groups"] for p in self.proxies],
                "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for proxy, groups in zip(self.proxies, state["proxies"]):
            for group, saved in zip(proxy.param_groups, groups):
                group.update({k: v for k, v in saved.items() if k != "params"})
        for scheduler, saved in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
