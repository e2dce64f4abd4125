"""Sweep callbacks: called once per configuration with that configuration's record; stop() freezes it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.core.workloads import mlp
from glassloop.core.workloads import ssa as ssa_data
from glassloop.errors import CallbackError, ConfigError

TRAIN, VAL = ssa_data(n=240)


def build() -> nn.Sequential:
    return mlp((4, 8, 1))


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_fit_start(self, state) -> None:
        self.events.append(("start", state.index, state.config["lr"]))

    def on_epoch_end(self, state) -> None:
        assert state.record is state.history.records[-1]  # the record the history just received
        self.events.append(("epoch", state.index, state.epoch, state.record["val_loss"]))

    def on_fit_end(self, state) -> None:
        self.events.append(("end", state.index, len(state.history.records), state.history.stop_reason))


def test_each_configuration_record_reaches_the_callbacks():
    recorder = Recorder()
    result = gl.sweep(build, TRAIN, VAL, {"lr": [1e-3, 1e-2], "seed": [0]}, epochs=3, batch_size=32,
                      verbose=False, callbacks=[recorder])
    starts = [e for e in recorder.events if e[0] == "start"]
    assert starts == [("start", 0, 1e-3), ("start", 1, 1e-2)]
    epochs = [e[1:] for e in recorder.events if e[0] == "epoch"]
    expected = [(index, epoch, result.histories[index].records[epoch]["val_loss"])
                for epoch in range(3) for index in range(2)]
    assert epochs == expected
    ends = [e[1:] for e in recorder.events if e[0] == "end"]
    assert ends == [(0, 3, "completed 3 epochs"), (1, 3, "completed 3 epochs")]


def test_a_callback_stops_one_configuration_and_it_stays_frozen():
    class StopSecond:
        def on_epoch_end(self, state) -> None:
            if state.index == 1 and state.epoch == 1:
                state.stop("enough for configuration 1")

    result = gl.sweep(build, TRAIN, VAL, {"lr": [1e-3, 1e-2], "seed": [0]}, epochs=4, batch_size=32,
                      verbose=False, callbacks=StopSecond())
    assert result.histories[1].stop_reason == "enough for configuration 1"
    assert result.table[1]["stopped_epoch"] == 1 and result.table[1]["epochs_trained"] == 2
    assert result.table[0]["epochs_trained"] == 4 and result.table[0]["stopped_epoch"] is None
    two_epochs = gl.sweep(build, TRAIN, VAL, {"lr": [1e-3, 1e-2], "seed": [0]}, epochs=2, batch_size=32,
                          verbose=False)
    # no update reached configuration 1 after its stop: its live weights are those of 2 epochs, bit for bit
    assert torch.equal(result._stack.flat[1], two_epochs._stack.flat[1])
    assert not torch.equal(result._stack.flat[0], two_epochs._stack.flat[0])


def test_bad_callbacks_are_refused_and_failures_named():
    with pytest.raises(ConfigError, match="on_fit_start, on_epoch_end, on_fit_end"):
        gl.sweep(build, TRAIN, VAL, {"seed": [0]}, epochs=1, verbose=False, callbacks=[object()])

    class Broken:
        def on_epoch_end(self, state) -> None:
            raise KeyError("boom")

    with pytest.raises(CallbackError, match="Broken failed in on_epoch_end for configuration 0: KeyError"):
        gl.sweep(build, TRAIN, VAL, {"seed": [0]}, epochs=1, verbose=False, callbacks=[Broken()])
