"""accumulate=k and precision= against hand-written references; the options object; the scheduler rule."""

import copy

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.core.options import FitOptions
from glassloop.errors import ConfigError


def data(n=70, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))


def test_k_micro_batches_give_the_gradient_of_one_big_batch():
    x, y = data(48)
    big, small = net(), net()
    nn.functional.mse_loss(big(x), y).backward()
    for part_x, part_y in zip(x.split(16), y.split(16)):  # what accumulate=3 does: each mean scaled by 1/3
        (nn.functional.mse_loss(small(part_x), part_y) / 3).backward()
    for a, b in zip(big.parameters(), small.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-6, atol=1e-7)


def hand_loop(model, x, y, batch, k, lr, epochs):
    """The reference: zero_grad once per group, each micro-batch's mean loss scaled by its share of the group's
    rows, one step per group; the short last group of an epoch is scaled by its own rows."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    batches = list(zip(x.split(batch), y.split(batch)))
    for _ in range(epochs):
        for first in range(0, len(batches), k):
            group = batches[first:first + k]
            rows = sum(len(b[0]) for b in group)
            optimizer.zero_grad()
            for inputs, targets in group:
                (nn.functional.mse_loss(model(inputs), targets) * (len(inputs) / rows)).backward()
            optimizer.step()
    return model


def test_fit_with_accumulate_equals_the_hand_written_loop_including_a_short_last_group():
    x, y = data(70)  # 70 rows, batch 8: 9 batches (the last of 6 rows), k=4: groups of 4, 4 and 1 batches
    reference = hand_loop(net(), x, y, batch=8, k=4, lr=0.05, epochs=3)
    model = net()
    history = gl.fit(model, (x, y), optimizer="sgd", lr=0.05, epochs=3, batch_size=8, shuffle=False,
                     accumulate=4, verbose=False)
    for a, b in zip(reference.parameters(), model.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
    assert len(history.records) == 3
    steps = gl.fit(net(), (x, y), optimizer="sgd", lr=0.05, epochs=2, batch_size=8, accumulate=4, verbose=False,
                   callbacks=[StepCounter()])
    assert StepCounter.last == 2 * 3  # state.step counts optimizer steps: 3 groups an epoch
    assert len(steps.records) == 2


class Norms:
    def __init__(self):
        self.norms = {}

    def on_batch_end(self, state):
        self.norms[(state.epoch, state.batch_index)] = float(state.grad_norm)


class StepCounter:
    last = 0

    def on_fit_end(self, state):
        StepCounter.last = state.step


def test_accumulate_one_and_precision_32_change_nothing():
    x, y = data(64)
    plain, same = net(), net()
    gl.fit(plain, (x, y), epochs=2, batch_size=16, seed=1, verbose=False)
    gl.fit(same, (x, y), epochs=2, batch_size=16, seed=1, verbose=False, accumulate=1, precision="32")
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), same.parameters()))


def test_bf16_on_cpu_trains_under_autocast_and_stays_close_to_fp32():
    x, y = data(64)
    seen = []

    class Probe(nn.Module):
        def forward(self, inputs):
            seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
            return inputs

    fp32, bf16 = net(), nn.Sequential(Probe(), *copy.deepcopy(net()))
    h32 = gl.fit(fp32, (x, y), epochs=3, batch_size=16, seed=0, verbose=False, lr=1e-2)
    h16 = gl.fit(bf16, (x, y), epochs=3, batch_size=16, seed=0, verbose=False, lr=1e-2, precision="bf16")
    assert seen and all(dtype == torch.bfloat16 for dtype in seen)
    assert h16.records[-1]["train_loss"] < h16.records[0]["train_loss"]
    assert abs(h16.records[-1]["train_loss"] - h32.records[-1]["train_loss"]) < 0.1 * h32.records[0]["train_loss"]


def test_fp16_scaler_unscales_before_the_norm_and_its_state_is_checkpointed(tmp_path):
    x, y = data(64)
    fp16, fp32 = Norms(), Norms()
    # a tiny LR keeps the weights (nearly) where they start, so each batch's norm is comparable across the runs
    gl.fit(net(), (x, y), epochs=2, batch_size=16, seed=0, verbose=False, precision="16-mixed", lr=1e-9,
           optimizer="sgd", clip_grad_norm=1.0, callbacks=[gl.Checkpoint(tmp_path), fp16])
    gl.fit(net(), (x, y), epochs=2, batch_size=16, seed=0, verbose=False, lr=1e-9, optimizer="sgd",
           clip_grad_norm=1.0, callbacks=[fp32])
    # each applied step's norm is the true (unscaled) one, as in fp32 -- not 65536x larger; overflowed steps
    # were skipped by the scaler (fewer steps), not stopped by the non-finite guard
    assert fp16.norms and len(fp16.norms) <= len(fp32.norms)
    for key, norm in fp16.norms.items():
        assert norm == pytest.approx(fp32.norms[key], rel=0.02)
    saved = gl.load_checkpoint(tmp_path / "latest.pt")
    scaler_state = saved["callbacks"]["Precision:0"]
    assert 0 < scaler_state["scale"] < 65536.0 and "_growth_tracker" in scaler_state  # it backed off


@pytest.mark.parametrize("options, message", [
    ({"accumulate": 0}, r"accumulate=0 must be an integer >= 1"),
    ({"accumulate": 2.5}, r"accumulate=2.5"),
    ({"precision": "fp8"}, r"precision='fp8'"),
    ({"epochs": 10**9}, r"epochs=1000000000 is more than"),
])
def test_bad_options_are_one_line_config_errors(options, message):
    with pytest.raises(ConfigError, match=message) as caught:
        FitOptions(**options)
    assert "\n" not in str(caught.value)


def test_options_are_frozen_and_spell_precision_once():
    options = FitOptions(precision="bf16-mixed")
    assert options.precision == "bf16"
    with pytest.raises(AttributeError):
        options.lr = 1.0  # type: ignore[misc]


def test_lesson_004_warmup_lambda_is_stepped_per_optimizer_step(capsys):
    x, y = data(64)  # 4 steps an epoch: a 100-step warmup must reach 8/100 after 2 epochs, not 2/100
    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda step: min(1.0, step / 100))
    gl.fit(model, (x, y), optimizer=optimizer, scheduler=scheduler, epochs=2, batch_size=16, verbose=True,
           progress=False)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 8 / 100)
    assert "LambdaLR is stepped after every optimizer step" in capsys.readouterr().err
    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda epoch: min(1.0, epoch / 100))
    gl.fit(model, (x, y), optimizer=optimizer, scheduler=scheduler, scheduler_step="epoch", epochs=2,
           batch_size=16, verbose=False)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 2 / 100)


class Terminal:
    """A stream that says it is a terminal (progress bars appear only on one)."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return True

    @property
    def text(self):
        return "".join(self.parts)


def test_many_short_epochs_show_one_bar_for_the_whole_fit_and_nothing_off_a_terminal():
    x, y = data(64)
    terminal = Terminal()
    gl.fit(net(), (x, y), epochs=25, batch_size=32, verbose=False, callbacks=[gl.Console(stream=terminal)])
    assert "25/25" in terminal.text and "epoch" in terminal.text  # one bar counting epochs, run to the end
    piped = Terminal()
    piped.isatty = lambda: False
    gl.fit(net(), (x, y), epochs=25, batch_size=32, verbose=False, callbacks=[gl.Console(stream=piped)])
    assert "25/25" not in piped.text and "it/s" not in piped.text


def test_a_blow_up_prints_readable_numbers():
    from glassloop.callbacks.console import _fmt, readable

    assert _fmt(293109241876068629957149464975114240.0, 12) == "   2.931e+35"
    assert readable(0.25) == "0.250000" and readable(3e35) == "3.000e+35"
