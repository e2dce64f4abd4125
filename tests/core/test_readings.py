"""fit(check_finite_every=N): the loss and norm stay on the device between reads, and the NaN guard still stops
before any bad update (glassloop/core/readings.py)."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.errors import ConfigError


class Residual(nn.Module):
    """Not an nn.Sequential: the autograd path (loss.backward()) with the flat optimizer."""

    def __init__(self) -> None:
        super().__init__()
        self.inner, self.outer = nn.Linear(4, 8), nn.Linear(8, 1)

    def forward(self, x):
        return self.outer(torch.tanh(self.inner(x))) + x[:, :1]


def sequential():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))


def train(builder, every, bad_row=None, optimizer="adam", epochs=3):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=generator)
    y = x.sum(1, keepdim=True)
    if bad_row is not None:
        y[bad_row] = float("nan")
    torch.manual_seed(1)
    model = builder()
    history = gl.fit(model, (x, y), val=(x[:64], y[:64]), optimizer=optimizer, epochs=epochs, batch_size=32,
                     shuffle=False, seed=3, verbose=False, check_finite_every=every)
    return model, history


def same_records(a, b):
    drop = lambda r: {k: repr(v) for k, v in r.items() if k != "seconds"}  # noqa: E731  (repr: nan == nan)
    return [drop(r) for r in a.records] == [drop(r) for r in b.records]


@pytest.mark.parametrize("builder", [sequential, Residual])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_reading_every_nth_step_changes_no_number(builder, optimizer):
    (a, history_a), (b, history_b) = train(builder, 1, optimizer=optimizer), train(builder, 5, optimizer=optimizer)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert same_records(history_a, history_b)
    assert all(r["train_loss"] > 0 and r["grad_norm"] > 0 for r in history_b.records)  # no placeholder 0.0 left


# 8 batches an epoch, reads at steps 5 and 8 of each: row 100 (batch 4) is read at its window's end, row 200
# (batch 7) only at the epoch's end.
@pytest.mark.parametrize("bad_row", [100, 200, 0])
@pytest.mark.parametrize("builder", [sequential, Residual])
def test_a_nan_stops_the_run_before_any_bad_update(builder, bad_row):
    (a, history_a), (b, history_b) = train(builder, 1, bad_row), train(builder, 5, bad_row)
    assert history_a.stop_reason.startswith("non-finite")
    assert history_b.stop_reason == history_a.stop_reason  # same epoch, batch and step named
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)  # the bad step and those after it were skipped on the device
        assert torch.isfinite(q).all()
    assert same_records(history_a, history_b)


class Steps:
    """Reads Adam's per-parameter step counters when the fit ends."""

    def on_fit_end(self, state):
        self.steps = [float(entry["step"]) for entry in state.optimizer.state.values()]


@pytest.mark.parametrize("builder", [sequential, Residual])
def test_skipped_steps_are_not_counted_by_adam(builder):
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    y[40] = float("inf")  # the 3rd of 4 batches (16 rows each): two updates, then the guard
    steps = Steps()
    history = gl.fit(builder(), (x, y), epochs=2, batch_size=16, shuffle=False, verbose=False,
                     check_finite_every=4, callbacks=[steps])
    assert "epoch 1, batch 3, step 3;" in history.stop_reason
    assert steps.steps == [2.0] * len(steps.steps)  # the bad step and the one after it were skipped and undone


@pytest.mark.parametrize("bad", [0, -2, True, 1.5, "5"])
def test_bad_values_are_one_line_errors(bad):
    with pytest.raises(ConfigError, match="check_finite_every"):
        gl.fit(sequential(), (torch.randn(8, 4), torch.randn(8, 1)), epochs=1, verbose=False,
               check_finite_every=bad)


class SignalAtEpochStart:
    """SIGINT to this process as epoch 1 starts: the run stops after that epoch's first step (an epoch-level
    callback, so the flat path and the deferred reads stay on)."""

    def on_epoch_start(self, state):
        if state.epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("builder", [sequential, Residual])
def test_a_signal_mid_window_saves_the_pending_values_and_resumes_bitwise(builder, tmp_path):
    reference, history = train(builder, 4)  # uninterrupted, the same data and options as below
    x = torch.randn(256, 4, generator=torch.Generator().manual_seed(0))
    y = x.sum(1, keepdim=True)
    options = {"val": (x[:64], y[:64]), "epochs": 3, "batch_size": 32, "shuffle": False, "seed": 3,
               "verbose": False, "check_finite_every": 4}
    torch.manual_seed(1)
    stopped = gl.fit(builder(), (x, y), callbacks=[SignalAtEpochStart(), gl.Checkpoint(tmp_path)], **options)
    assert stopped.signal == signal.SIGINT
    torch.manual_seed(1)
    resumed_model = builder()
    resumed = gl.fit(resumed_model, (x, y), callbacks=[gl.Checkpoint(tmp_path, resume=True)], **options)
    for p, q in zip(reference.parameters(), resumed_model.parameters()):
        assert torch.equal(p, q)
    assert same_records(history, resumed)
