"""gl.sweep and gl.fit share one set of rules and bounds, and one epoch convention (1-based where seen)."""

from __future__ import annotations

import csv
import io

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.core.options import MAX_SEED
from glassloop.core.rules import choose_threads, patience_reason
from glassloop.core.workloads import mlp
from glassloop.core.workloads import ssa as ssa_data
from glassloop.errors import ConfigError

TRAIN, VAL = ssa_data(n=240)


def build() -> nn.Sequential:
    return mlp((4, 8, 1))


def test_sweep_csv_and_report_show_epochs_1_based(tmp_path):
    result = gl.sweep(build, TRAIN, VAL, {"lr": [3e-3, 3.0], "seed": [0]}, optimizer="sgd", momentum=0.9,
                      epochs=6, batch_size=32, patience=2, verbose=False, run_dir=tmp_path / "run")
    stopped = next(row for row in result.table if row["stopped_epoch"] is not None)
    assert result.histories[stopped["index"]].best_epoch == stopped["best_epoch"]  # Python: 0-based
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    for row, shown in zip(result.table, rows):
        assert int(shown["best_epoch"]) == row["best_epoch"] + 1
        assert shown["stopped_epoch"] == ("" if row["stopped_epoch"] is None else str(row["stopped_epoch"] + 1))
    assert (tmp_path / "run" / "sweep.csv").read_text() == result.to_csv()  # the run directory's copy
    best = result.table[result.best_index]
    assert result.report().endswith(f"at epoch {best['best_epoch'] + 1}")
    # the stop reason is gl.fit's EarlyStopping sentence, which names the best epoch 1-based
    history = result.histories[stopped["index"]]
    assert history.stop_reason == patience_reason("val_loss", 2, history.best_val_loss, history.best_epoch)


def test_nonfinite_stop_is_gl_fit_message():
    result = gl.sweep(build, TRAIN, VAL, {"lr": [1e-3, 1e6], "seed": [0]}, optimizer="sgd", epochs=2,
                      batch_size=32, verbose=False)
    reason = result.histories[1].stop_reason
    torch.manual_seed(0)
    history = gl.fit(build(), TRAIN, VAL, optimizer="sgd", lr=1e6, seed=0, epochs=2, batch_size=32, verbose=False)
    assert reason == history.stop_reason  # same rule, same words, same epoch/batch/step
    assert reason.startswith("non-finite") and "no update was applied" in reason


def test_sweep_runs_with_gl_fit_thread_policy():
    seen = []

    class Threads:
        def on_epoch_end(self, state) -> None:
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    gl.sweep(build, TRAIN, None, {"seed": [0, 1]}, epochs=1, batch_size=32, verbose=False, callbacks=[Threads()])
    parameters = sum(p.numel() for p in build().parameters())
    expected = choose_threads("auto", torch.device("cpu"), 32, parameters) or before
    assert seen == [expected, expected] and torch.get_num_threads() == before
    seen.clear()
    gl.sweep(build, TRAIN, None, {"seed": [0]}, epochs=1, batch_size=32, verbose=False, callbacks=[Threads()],
             threads=1)
    assert seen == [1]
    with pytest.raises(ConfigError, match="threads=0"):
        gl.sweep(build, TRAIN, None, {"seed": [0]}, epochs=1, verbose=False, threads=0)


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 1.5, True])
def test_seed_bounds_agree_with_gl_fit(seed):
    with pytest.raises(ConfigError, match="seed="):
        gl.fit(build(), TRAIN, epochs=1, seed=seed, verbose=False)
    with pytest.raises(ConfigError, match="seed="):
        gl.sweep(build, TRAIN, None, {"seed": [seed]}, epochs=1, verbose=False)


def test_largest_seed_is_accepted_by_both():
    gl.fit(build(), TRAIN, epochs=1, seed=MAX_SEED, verbose=False)
    result = gl.sweep(build, TRAIN, None, {"seed": [MAX_SEED]}, epochs=1, verbose=False)
    assert result.table[0]["seed"] == MAX_SEED


def test_bounds_on_epochs_are_gl_fit_bounds():
    from glassloop.core.options import MAX_EPOCHS

    with pytest.raises(ConfigError, match=f"epochs={MAX_EPOCHS + 1}"):
        gl.sweep(build, TRAIN, None, {"seed": [0]}, epochs=MAX_EPOCHS + 1, verbose=False)
