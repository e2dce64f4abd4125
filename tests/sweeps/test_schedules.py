"""Per-configuration LR schedules by name: each configuration's LR sequence and curve equal gl.fit's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.core.workloads import mlp
from glassloop.core.workloads import ssa as ssa_data
from glassloop.errors import ConfigError

TRAIN, VAL = ssa_data(n=240)  # 192 train rows: 6 steps per epoch at batch 32
EPOCHS = 5


def build() -> nn.Sequential:
    return mlp((4, 8, 1))


def solo(config: dict, optimizer: str, scheduler: str) -> tuple[gl.History, list[float]]:
    """gl.fit for one configuration, with a callback that reads the LR of every optimizer step."""
    step_lrs: list[float] = []

    class StepLR:
        def on_batch_start(self, state) -> None:
            step_lrs.append(state.optimizer.param_groups[0]["lr"])

    torch.manual_seed(config["seed"])
    model = build()
    history = gl.fit(model, TRAIN, VAL, optimizer=optimizer, lr=config["lr"], momentum=config["momentum"],
                     seed=config["seed"], epochs=EPOCHS, batch_size=32, scheduler=scheduler, verbose=False,
                     callbacks=[StepLR()])
    return history, step_lrs


@pytest.mark.parametrize(("scheduler", "optimizer"), [
    ("step", "adam"), ("exponential", "adam"), ("cosine", "adamw"), ("warmup_cosine", "adam"),
    ("plateau", "adam"), ("onecycle", "adam"), ("onecycle", "sgd"),
])
def test_each_configuration_follows_gl_fit_schedule(scheduler, optimizer):
    lrs = [0.05, 0.2] if optimizer == "sgd" else [1e-3, 1e-2]
    result = gl.sweep(build, TRAIN, VAL, {"lr": lrs, "seed": [0, 1]}, optimizer=optimizer, epochs=EPOCHS,
                      batch_size=32, scheduler=scheduler, verbose=False)
    for index, config in enumerate(result.configs):
        history, step_lrs = solo(config, optimizer, scheduler)
        mine = result.histories[index]
        # the LR each epoch trained with, as gl.fit records it: exactly torch's factors
        assert mine["lr"] == history["lr"], (index, mine["lr"], history["lr"])
        assert len(set(history["lr"])) > 1 or scheduler == "plateau"  # the schedule really moved
        for key in ("train_loss", "val_loss"):  # every step's LR (and onecycle's momentum) matched too
            assert mine[key] == pytest.approx(history[key], rel=1e-4), (index, key)
        assert len(step_lrs) == EPOCHS * 6


def test_plateau_follows_each_configuration_own_val_loss():
    # SGD at lr 2.0 stalls and gets its LR halved; lr 1e-3 keeps improving and keeps its LR
    result = gl.sweep(build, TRAIN, VAL, {"lr": [1e-3, 2.0], "seed": [0]}, optimizer="sgd", epochs=8,
                      batch_size=32, scheduler="plateau", verbose=False)
    slow, wild = result.histories
    assert slow["lr"] == [1e-3] * 8
    assert wild["lr"][0] == 2.0 and wild["lr"][-1] <= 1.0


def test_scheduler_instances_are_refused_with_the_names():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ConfigError, match="by name.*step, exponential, cosine, warmup_cosine, plateau, onecycle"):
        gl.sweep(build, TRAIN, VAL, {"seed": [0]}, scheduler=torch.optim.lr_scheduler.StepLR(optimizer, 1),
                 epochs=1, verbose=False)
