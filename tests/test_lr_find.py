"""gl.find_lr / `glassloop lr-find`: the exponential LR range test against a hand-written reference, bitwise
restoration of the model, optimizer and RNGs, the ssa suggestion that trains, plots, and one-line bad input."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop import cli
from glassloop.cli.lr_find import main as lr_find_main
from glassloop.core.workloads import linreg, mlp, ssa
from glassloop.errors import ConfigError
from glassloop.lr_find import LRFindResult, find_lr, suggest

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_curve_matches_a_hand_written_range_test():
    """Smith's test by hand: geometric LR per step, zero_grad -> forward -> loss -> backward -> step, smoothed
    with beta 0.98 and bias correction; glassloop gives the same numbers bit for bit."""
    inputs, targets = linreg(64)
    batches = [(inputs[:32], targets[:32]), (inputs[32:], targets[32:])]  # a list: no shuffling
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    reference = nn.Linear(1, 1)
    reference.load_state_dict(model.state_dict())
    result = find_lr(model, batches, optimizer="sgd", start=1e-4, end=1e-1, steps=30, batch_size=None)

    optimizer = torch.optim.SGD(reference.parameters(), lr=1e-4)
    lrs = [1e-4 * (1e-1 / 1e-4) ** (i / 29) for i in range(30)]
    losses, smoothed, average = [], [], 0.0
    for step, lr in enumerate(lrs):
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batches[step % 2]
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(reference(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        average = 0.98 * average + 0.02 * losses[-1]
        smoothed.append(average / (1 - 0.98 ** (step + 1)))
    assert result.lrs == pytest.approx(lrs, rel=1e-12) and result.lrs[0] == 1e-4 and result.lrs[-1] == 1e-1
    assert result.losses == losses  # bitwise: the same steps in the same order
    assert result.smoothed == pytest.approx(smoothed, rel=1e-12)
    assert "without diverging" in result.stop_reason
    assert result.rule == "min/10" and result.suggestion == pytest.approx(result.best_lr / 10)
    assert result.best_lr == lrs[int(np.argmin(smoothed))]


def test_it_stops_when_the_smoothed_loss_exceeds_four_times_its_best():
    train, _ = ssa()
    torch.manual_seed(0)
    result = find_lr(mlp((4, 64, 64, 1)), train, batch_size=64)
    assert 10 < len(result.lrs) < 100 and "diverged" in result.stop_reason
    assert result.smoothed[-1] > 4 * min(result.smoothed[:-1])
    assert all(s <= 4 * min(result.smoothed[: i + 1]) for i, s in enumerate(result.smoothed[:-1]))


def test_model_optimizer_and_rng_are_restored_bitwise():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    train, _ = ssa(400)
    nn.functional.mse_loss(model(train[0][:32]), train[1][:32]).backward()
    optimizer.step()  # the optimizer has state; the gradients are left in place
    model.eval()
    random.seed(3)
    np.random.seed(4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    optimizer_before = optimizer.state_dict()
    moments = {i: {k: v.clone() for k, v in s.items()} for i, s in optimizer_before["state"].items()}
    rng = (torch.get_rng_state(), np.random.get_state(), random.getstate())

    result = find_lr(model, train, optimizer=optimizer, start=1e-5, end=1.0, steps=40)
    assert len(result.losses) > 5 and result.lrs[-1] > 1e-3  # it really trained at many LRs in between

    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BatchNorm statistics
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert not model.training and not any(m.training for m in model.modules())
    state = optimizer.state_dict()
    assert state["param_groups"][0]["lr"] == 3e-4 and state["param_groups"] == optimizer_before["param_groups"]
    assert state["state"].keys() == moments.keys()
    assert all(torch.equal(moments[i][k], v) for i, s in state["state"].items() for k, v in s.items())
    assert torch.equal(torch.get_rng_state(), rng[0])
    assert all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
               for a, b in zip(np.random.get_state(), rng[1]))  # fmt: skip
    assert random.getstate() == rng[2]


def test_the_ssa_suggestion_trains_within_2x_of_the_lessons_lr():
    """Issue 15: the suggested LR must reach within 2x the val loss lr=1e-3 reaches in the same epochs."""
    train, val = ssa()
    torch.manual_seed(42)
    result = find_lr(mlp((4, 64, 64, 1)), train, batch_size=64)
    assert result.suggestion is not None and 1e-5 < result.suggestion < 1.0

    def val_loss(lr: float) -> float:
        torch.manual_seed(42)
        history = gl.fit(mlp((4, 64, 64, 1)), train, val, lr=lr, epochs=4, batch_size=64, seed=42,
                         verbose=False, progress=False)  # fmt: skip
        return history.records[-1]["val_loss"]

    assert val_loss(result.suggestion) <= 2 * val_loss(1e-3)


def test_steepest_rule_and_short_curves():
    lrs = list(np.geomspace(1e-5, 1, 30))
    smoothed = [1.0] * 12 + [1.0 - 0.1 * i for i in range(1, 9)] + [0.2] * 10
    suggestion, best_lr = suggest(lrs, smoothed, "steepest")
    assert lrs[11] <= suggestion <= lrs[19] and best_lr == lrs[19]  # where it falls, not where it is flat
    assert suggest(lrs[:1], [1.0], "steepest") == (None, lrs[0])
    assert suggest([], [], "min/10") == (None, None)


def test_plot_writes_a_png_and_matplotlib_stays_lazy(tmp_path):
    result = LRFindResult([1e-4, 1e-3, 1e-2], [1.0, 0.5, math.inf], [1.0, 0.7], 1e-4, "min/10", "stopped", 1e-3)
    figure = result.plot(tmp_path / "sub" / "curve.png")
    assert (tmp_path / "sub" / "curve.png").read_bytes().startswith(PNG_MAGIC)
    assert figure.axes[0].get_xscale() == "log"
    assert any("suggested lr 0.0001" in label for label in figure.axes[0].get_legend_handles_labels()[1])
    code = "import sys, glassloop.lr_find; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize(("options", "message"), [
    ({"start": 1.0, "end": 1e-3}, "wrong order"),
    ({"start": 1e-3, "end": 1e-3}, "wrong order"),
    ({"steps": 1}, "steps=1"),
    ({"steps": 2.5}, "steps=2.5"),
    ({"start": 0.0}, "start=0.0"),
    ({"end": math.inf}, "end=inf"),
    ({"rule": "valley"}, "rule='valley'"),
])  # fmt: skip
def test_bad_bounds_are_one_line_config_errors(options, message):
    model = nn.Linear(1, 1)
    weights = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ConfigError, match=message) as caught:
        find_lr(model, linreg(16), **options)
    assert "\n" not in str(caught.value)
    assert all(torch.equal(w, p) for w, p in zip(weights, model.parameters()))  # nothing ran


@pytest.fixture
def ssa_csv(tmp_path) -> Path:
    import pandas as pd

    (inputs, targets), _ = ssa(500)
    frame = pd.DataFrame(inputs.numpy(), columns=["speed", "miss", "confidence", "tca"])
    frame["risk"] = targets.numpy()[:, 0]
    path = tmp_path / "ssa.csv"
    frame.to_csv(path, index=False)
    return path


def test_cli_prints_the_suggestion_and_draws_the_curve(ssa_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "lr-find", ("glassloop.cli.lr_find", "main", "LR range test"))
    out, as_json = tmp_path / "curve.png", tmp_path / "curve.json"
    code = cli.main(["lr-find", str(ssa_csv), "--target", "risk", "--out", str(out), "--json", str(as_json),
                     "--batch-size", "64"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "suggested lr" in printed and "min/10" in printed and "--lr " in printed
    assert out.read_bytes().startswith(PNG_MAGIC)
    import json

    data = json.loads(as_json.read_text())
    assert data["rule"] == "min/10" and data["suggestion"] == pytest.approx(data["best_lr"] / 10)


@pytest.mark.parametrize(("flags", "message"), [
    (["--start", "1", "--end", "0.001"], "wrong order"),
    (["--steps", "1"], "steps=1"),
    (["--out", "/missing/dir/curve.png"], "does not exist"),
    (["--out", "curve.txt"], "ending in .png"),
    (["--bogus"], "unrecognized arguments"),
    (["--target", "nope"], "nope"),
])  # fmt: skip
def test_cli_bad_input_is_one_line_exit_2(ssa_csv, capsys, monkeypatch, flags, message):
    monkeypatch.setitem(cli.COMMANDS, "lr-find", ("glassloop.cli.lr_find", "main", "LR range test"))
    args = ["lr-find", str(ssa_csv), *([] if "--target" in flags else ["--target", "risk"]), *flags]
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err, captured.err


def test_cli_main_raises_config_error_for_python_callers(ssa_csv):
    with pytest.raises(ConfigError, match="wrong order"):
        lr_find_main([str(ssa_csv), "--target", "risk", "--start", "10", "--end", "1"])


def test_a_dataloader_and_compute_loss_work_and_cycle_epochs():
    from torch.utils.data import DataLoader, TensorDataset

    inputs, targets = linreg(40)
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=16)  # 3 batches an epoch, 25 steps asked
    seen = []

    def compute_loss(model, batch):
        seen.append(len(batch[0]))
        return nn.functional.mse_loss(model(batch[0]), batch[1])

    torch.manual_seed(0)
    result = find_lr(nn.Linear(1, 1), loader, optimizer="sgd", start=1e-4, end=1e-2, steps=25,
                     compute_loss=compute_loss)  # fmt: skip
    assert len(result.losses) == 25 and seen[:6] == [16, 16, 8, 16, 16, 8]
    assert result.suggestion is not None
