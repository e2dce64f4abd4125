"""gl.sweep: every configuration equals its own gl.fit run; per-config lr, clipping, early stopping; table, CLI."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.core.workloads import mlp
from glassloop.core.workloads import ssa as ssa_data
from glassloop.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
TRAIN, VAL = ssa_data(n=400)  # 320 train rows, 80 val rows: 10 steps per epoch at batch 32
RTOL = 1e-4


def build() -> nn.Sequential:
    return mlp((4, 16, 16, 1))


class Residual(nn.Module):
    """Not an nn.Sequential: goes through torch.func.vmap."""

    def __init__(self) -> None:
        super().__init__()
        self.inner, self.outer = nn.Linear(4, 8), nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(torch.tanh(self.inner(x)) + self.inner(x))


def solo(builder, config, epochs, patience=None, **options):
    """One configuration alone: the model built after torch.manual_seed(seed), then gl.fit with that seed."""
    torch.manual_seed(config["seed"])
    model = builder()
    callbacks = [gl.EarlyStopping(patience=patience or 10_000)]  # restore_best: ends on the best epoch's weights
    history = gl.fit(model, TRAIN, VAL, lr=config["lr"], weight_decay=config["weight_decay"],
                     momentum=config["momentum"], clip_grad_norm=config["clip_grad_norm"], seed=config["seed"],
                     epochs=epochs, batch_size=32, shuffle=True, verbose=False, callbacks=callbacks, **options)
    return history, model


def assert_matches_solo(result, builder, epochs, patience=None, **options):
    for index, config in enumerate(result.configs):
        history, model = solo(builder, config, epochs, patience, **options)
        mine = result.histories[index]
        assert len(mine.records) == len(history.records), (index, history.stop_reason, mine.stop_reason)
        for expected, got in zip(history.records, mine.records):
            for key in ("train_loss", "val_loss", "grad_norm"):
                assert got[key] == pytest.approx(expected[key], rel=RTOL), (index, key, expected["epoch"])
        assert mine.best_epoch == history.best_epoch
        assert result.table[index]["best_epoch"] == history.best_epoch
        for expected, got in zip(model.state_dict().values(), result.model(index).state_dict().values()):
            torch.testing.assert_close(got, expected, rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize(("optimizer", "extra"), [
    ("adam", {"weight_decay": [0.0, 1e-2]}),
    ("adamw", {"weight_decay": [1e-2], "clip_grad_norm": [None, 1.0]}),
    ("sgd", {"momentum": [0.0, 0.9], "weight_decay": [1e-3]}),
])
def test_each_configuration_equals_its_own_fit(optimizer, extra):
    grid = {"lr": [1e-3, 3e-3], "seed": [0, 1], **extra}
    lr_scale = 10 if optimizer == "sgd" else 1  # SGD needs larger steps to move in 3 epochs
    grid["lr"] = [lr * lr_scale for lr in grid["lr"]]
    result = gl.sweep(build, TRAIN, VAL, grid, optimizer=optimizer, epochs=3, batch_size=32, verbose=False)
    assert result.method == "bmm" and len(result) == 8
    assert_matches_solo(result, build, 3, optimizer=optimizer)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_per_configuration_gemm_loop_equals_fit(monkeypatch, optimizer):
    # Large layers run one mm per configuration instead of bmm (glassloop/sweeps/stacks.py LOOP_MACS); force it
    # at these small sizes so both paths meet the same oracle: each configuration's own gl.fit.
    monkeypatch.setattr("glassloop.sweeps.stacks.LOOP_MACS", 0)
    grid = {"lr": [1e-3, 3e-2], "seed": [0, 1], "clip_grad_norm": [None, 1.0]}
    result = gl.sweep(build, TRAIN, VAL, grid, optimizer=optimizer, epochs=2, batch_size=32, verbose=False)
    assert result.method == "bmm"
    assert_matches_solo(result, build, 2, optimizer=optimizer)


def test_vmap_path_for_other_architectures_equals_fit():
    result = gl.sweep(Residual, TRAIN, VAL, {"lr": [1e-3, 1e-2], "seed": [3]}, epochs=2, batch_size=32,
                      verbose=False)
    assert result.method == "vmap"
    assert_matches_solo(result, Residual, 2)
    forced = gl.sweep(build, TRAIN, VAL, {"seed": [0, 1]}, epochs=2, batch_size=32, verbose=False, method="vmap")
    assert forced.method == "vmap"
    assert_matches_solo(forced, build, 2)


def test_cross_entropy_and_tanh_sigmoid_layers_equal_fit():
    labels = (TRAIN[1].view(-1) > TRAIN[1].median()).long()
    val_labels = (VAL[1].view(-1) > TRAIN[1].median()).long()

    def classifier() -> nn.Sequential:
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 2))

    result = gl.sweep(classifier, (TRAIN[0], labels), (VAL[0], val_labels), {"lr": [1e-2], "seed": [0, 1]},
                      loss="cross_entropy", epochs=2, batch_size=32, verbose=False)
    assert result.method == "bmm"
    for index, config in enumerate(result.configs):
        torch.manual_seed(config["seed"])
        history = gl.fit(classifier(), (TRAIN[0], labels), (VAL[0], val_labels), loss="cross_entropy",
                         lr=config["lr"], seed=config["seed"], epochs=2, batch_size=32, verbose=False)
        assert result.histories[index]["val_loss"] == pytest.approx(history["val_loss"], rel=RTOL)


def test_learning_rates_really_differ():
    result = gl.sweep(build, TRAIN, VAL, {"lr": [1e-4, 1e-2], "seed": [0]}, epochs=3, batch_size=32, verbose=False)
    slow, fast = result.histories
    assert slow.records[0]["lr"] == 1e-4 and fast.records[0]["lr"] == 1e-2
    assert fast.records[-1]["train_loss"] < 0.5 * slow.records[-1]["train_loss"]
    torch.manual_seed(0)
    start = build()
    moved = [sum((p - q).abs().sum().item() for p, q in zip(start.parameters(), result.model(i).parameters()))
             for i in range(2)]
    assert moved[1] > 10 * moved[0]  # Adam moves each weight by about lr per step: 100x the lr, far more motion


def test_clipping_is_per_configuration():
    result = gl.sweep(build, TRAIN, None, {"clip_grad_norm": [None, 1e-3], "seed": [0]}, optimizer="sgd", lr=0.1,
                      epochs=1, batch_size=32, verbose=False)
    torch.manual_seed(0)
    start = torch.nn.utils.parameters_to_vector(build().parameters())
    moved = [(torch.nn.utils.parameters_to_vector(result.model(i).parameters()) - start).norm().item()
             for i in range(2)]
    steps = 10
    assert moved[1] <= steps * 0.1 * 1e-3 * (1 + 1e-4)  # each SGD step moves at most lr * max_norm
    assert moved[0] > 100 * moved[1]
    # the recorded norm is measured before clipping, as in gl.fit
    assert result.histories[1].records[0]["grad_norm"] > 1e-2


def test_early_stopping_and_nonfinite_freeze_a_configuration():
    grid = {"lr": [1e-2, 0.3, 1e4], "seed": [0]}
    result = gl.sweep(build, TRAIN, VAL, grid, optimizer="sgd", momentum=0.9, epochs=6, batch_size=32, patience=2,
                      verbose=False)
    rows = result.table
    assert rows[0]["stopped_epoch"] is None and rows[0]["epochs_trained"] == 6
    assert rows[1]["stopped_epoch"] is not None and rows[1]["epochs_trained"] < 6
    assert result.histories[1].stop_reason.startswith("early stopping")
    assert result.histories[2].stop_reason.startswith("non-finite")
    assert rows[2]["epochs_trained"] == 1
    assert all(torch.isfinite(p).all() for p in result.model(2).parameters())
    # same stop epochs, records and restored best weights as gl.fit with EarlyStopping(patience=2)
    assert_matches_solo(result, build, 6, patience=2, optimizer="sgd")


def test_frozen_configuration_is_not_updated_any_more():
    result = gl.sweep(build, TRAIN, VAL, {"lr": [1e-2, 0.3], "seed": [0]}, optimizer="sgd", momentum=0.9,
                      epochs=6, batch_size=32, patience=2, verbose=False)
    stopped = result.table[1]
    assert stopped["stopped_epoch"] is not None
    # the live weights of the stopped configuration are those of its stop epoch: the update was masked since
    history, _ = solo(build, result.configs[1], stopped["stopped_epoch"] + 1, optimizer="sgd")
    torch.manual_seed(0)
    at_stop = build()
    gl.fit(at_stop, TRAIN, VAL, optimizer="sgd", momentum=0.9, lr=0.3, seed=0, epochs=stopped["stopped_epoch"] + 1,
           batch_size=32, verbose=False)
    live = result._stack.unstack(result._stack.flat[1].detach())
    for expected, got in zip(at_stop.parameters(), live.parameters()):
        torch.testing.assert_close(got, expected, rtol=RTOL, atol=1e-5)


def test_build_model_gets_the_configuration_after_seeding():
    seen = []

    def builder(config):
        seen.append((config["lr"], config["seed"], torch.initial_seed()))
        return build()

    gl.sweep(builder, TRAIN, None, {"lr": [1e-3, 2e-3], "seed": [5, 6]}, epochs=1, batch_size=64, verbose=False)
    assert seen == [(1e-3, 5, 5), (1e-3, 6, 6), (2e-3, 5, 5), (2e-3, 6, 6)]


def test_table_summary_best_config_and_csv(tmp_path):
    result = gl.sweep(build, TRAIN, VAL, {"lr": [1e-3, 1e-2], "seed": range(3)}, epochs=2, batch_size=32,
                      verbose=False)
    assert [row["index"] for row in result.table] == list(range(6))
    assert {"lr", "seed", "best_epoch", "best_val_loss", "train_loss", "stopped_epoch"} <= set(result.table[0])
    summary = result.summary()
    assert [row["lr"] for row in summary] == [1e-3, 1e-2] and all(row["runs"] == 3 for row in summary)
    for row in summary:
        values = [r["best_val_loss"] for r in result.table if r["lr"] == row["lr"]]
        assert row["best_val_loss_mean"] == pytest.approx(statistics.fmean(values))
        assert row["best_val_loss_std"] == pytest.approx(statistics.stdev(values))
    best = min(result.table, key=lambda r: r["best_val_loss"])
    assert result.best_config == result.configs[best["index"]]
    assert isinstance(result.histories[0], gl.History) and len(result.histories[0]) == 2
    text = result.to_csv(tmp_path / "table.csv")
    assert (tmp_path / "table.csv").read_text() == text and len(text.splitlines()) == 7
    assert "best: configuration" in result.report()
    with pytest.raises(IndexError):
        result.model(6)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grid": {"learning_rate": [1e-3]}}, "allowed keys: lr, weight_decay, momentum, seed, clip_grad_norm"),
    ({"grid": {"lr": []}}, "empty"),
    ({"grid": {"lr": [-1.0]}}, "lr=-1.0"),
    ({"grid": {"seed": [1.5]}}, "seed=1.5"),
    ({"grid": {"momentum": [0.9]}}, "momentum only applies"),
    ({"patience": 2, "val": None}, "patience needs validation"),
    ({"optimizer": "rmsprop"}, "sgd, adam, adamw"),
    ({"scheduler": "cosine_restarts"}, "schedulers"),
    ({"train": [TRAIN[0], TRAIN[1][:10]]}, "rows"),
    ({"grid": {"seed": [-3]}}, "seed=-3"),
    ({"grid": {"seed": [2**64]}}, "seed=18446744073709551616"),
    ({"batch_size": 10**20}, "batch_size=100000000000000000000"),
])
def test_bad_input_is_a_config_error(kwargs, message):
    options = {"train": TRAIN, "val": VAL, "grid": {"seed": [0]}, "epochs": 1, "verbose": False} | kwargs
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        gl.sweep(build, **options)


def test_different_architectures_and_models_are_refused():
    with pytest.raises(ConfigError, match="different architectures"):
        gl.sweep(lambda c: mlp((4, 8 * (c["seed"] + 1), 1)), TRAIN, None, {"seed": [0, 1]}, verbose=False)
    with pytest.raises(ConfigError, match="fresh"):
        gl.sweep(build(), TRAIN, None, {"seed": [0]}, verbose=False)


def test_mlflow_parent_and_child_runs(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    # The file store: the same client calls as sqlite without ~10 s of schema migrations per test.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    result = gl.sweep(build, TRAIN, VAL, {"lr": [1e-3, 1e-2], "seed": [0]}, epochs=2, batch_size=64, verbose=False,
                      mlflow={"tracking_uri": uri, "experiment": "sweep-test"})
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("sweep-test")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.mlflow_run_id]
    assert len(runs) == 3 and len(children) == 2
    child = next(r for r in children if r.data.params["lr"] == "0.01")
    history = client.get_metric_history(child.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]  # 1-based, as everything a person sees
    assert history[-1].value == pytest.approx(result.histories[1].records[-1]["val_loss"])


def test_cli_runs_a_sweep_and_rejects_bad_input_in_one_line(tmp_path):
    out = tmp_path / "table.csv"
    ok = subprocess.run([sys.executable, "-m", "glassloop", "sweep", "--workload", "linreg", "--seeds", "2",
                         "--lr", "0.01,0.1", "--epochs", "3", "--out", str(out), "--quiet"],
                        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "best: configuration" in ok.stdout and len(out.read_text().splitlines()) == 5
    bad = subprocess.run([sys.executable, "-m", "glassloop", "sweep", "--lr", "fast"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--lr" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("argv", [
    ["--workload", "mnist"], ["--seeds", "0"], ["--optimizer", "lbfgs"], ["--target", "y"],
    ["--clip-grad-norm", "-1"], ["--bogus-flag"],
])
def test_cli_bad_input_exits_2(argv, capsys):
    from glassloop.cli import main

    assert main(["sweep", *argv]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_gl_sweep_stays_callable_after_the_module_is_imported():
    import glassloop.sweeps.api  # noqa: F401 - importing a submodule sets a package attribute
    import glassloop.sweeps.trainer  # noqa: F401

    result = gl.sweep(build, TRAIN, None, {"seed": [0]}, epochs=1, verbose=False)
    assert len(result) == 1 and math.isfinite(result.table[0]["train_loss"])


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_plain_adam_fallback_equals_the_fused_kernel(name):
    from glassloop.sweeps.optim import StackedOptimizer

    torch.manual_seed(0)
    start, steps = torch.randn(3, 50), [torch.randn(3, 50) for _ in range(5)]
    configs = [{"lr": lr, "weight_decay": wd, "momentum": 0.0} for lr, wd in ((1e-3, 0.0), (3e-3, 1e-2), (1e-2, 0.1))]
    fused_weights, plain_weights = start.clone(), start.clone()
    fused_grad, plain_grad = torch.zeros(3, 50), torch.zeros(3, 50)
    fused = StackedOptimizer(name, fused_weights, fused_grad, configs, fused=True)
    plain = StackedOptimizer(name, plain_weights, plain_grad, configs, fused=False)
    assert fused.fused and not plain.fused
    for grad in steps:
        fused_grad.copy_(grad)
        plain_grad.copy_(grad)
        fused.step()
        plain.step()
    torch.testing.assert_close(plain_weights, fused_weights, rtol=1e-6, atol=1e-7)
    assert (fused_weights - start).abs().max() > 1e-2


# ------------------------------------------------------------------------------------------- reviewer's gaps
@pytest.fixture
def no_training(monkeypatch):
    """Bad input must be found before any configuration trains: gl.sweep itself fails the test if reached."""
    import glassloop.cli.sweep as module

    def trained(*args, **kwargs):
        raise AssertionError("the sweep trained before the bad input was found")

    monkeypatch.setattr(module, "sweep", trained)


@pytest.mark.parametrize("argv", [
    ["--out", "DIR"], ["--out", "/proc/glassloop-test.csv"], ["--out", "/dev/full"], ["--out", ""],
    ["--out", "missing/table.csv"], ["--mlflow", "bogus://x"], ["--mlflow", "sqlite:/no-slashes.db"],
    ["--mlflow", "http://"], ["--seeds", "1e20"], ["--seeds", "100000000000000000000"], ["--seeds", "-3"],
    ["--seeds", "0"], ["--seeds", "3,3"], ["--seeds", str(2**63)], ["--batch-size", "100000000000000000000"],
    ["--batch-size", "0"], ["--epochs", "0"], ["--epochs", str(10**12)], ["--patience", "-1"],
    ["--lr", "1e-3,,2"], ["--lr", "1e-3,1e-3"], ["--lr", ""], ["--lr", "nan"], ["--weight-decay", "0.1,inf"],
    ["--seeds", "5000", "--lr", "1e-3,2e-3,3e-3"],
])
def test_cli_bad_input_is_found_before_training(argv, tmp_path, capsys, no_training):
    from glassloop.cli import main

    (tmp_path / "DIR").mkdir()
    argv = [str(tmp_path / a) if a in ("DIR", "missing/table.csv") else a for a in argv]
    assert main(["sweep", "--workload", "linreg", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("glassloop sweep: error: "), err
    assert "Traceback" not in err and [p.name for p in tmp_path.iterdir()] == ["DIR"]


def test_cli_refuses_a_model_too_big_without_building_it(tmp_path, capsys, no_training):
    from glassloop.cli import main

    rows = "".join(f"{i},{i % 3},{2 * i}\n" for i in range(20))
    (tmp_path / "t.csv").write_text("a,b,y\n" + rows)
    assert main(["sweep", str(tmp_path / "t.csv"), "--target", "y", "--hidden", "65536,65536"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "parameters" in err
    assert main(["sweep", str(tmp_path / "t.csv"), "--target", "y", "--out", str(tmp_path / "t.csv")]) == 2
    assert "DATA table itself" in capsys.readouterr().err and (tmp_path / "t.csv").read_text().endswith(rows)


def test_cli_table_is_written_atomically(tmp_path, capsys, monkeypatch):
    import glassloop.core.checkpoint
    from glassloop.cli import main

    def full(data, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(glassloop.core.checkpoint, "write_file", full)
    out = tmp_path / "table.csv"
    assert main(["sweep", "--workload", "linreg", "--seeds", "1", "--epochs", "1", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "No space left on device" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


class Halved(nn.Sequential):
    def forward(self, x):
        return super().forward(x) / 2


class Shifted(nn.Linear):
    def forward(self, x):
        return super().forward(x) + 1.0


def reused_layer():
    layer = nn.Linear(3, 3)
    return nn.Sequential(layer, nn.Tanh(), layer, nn.Linear(3, 1))


@pytest.mark.parametrize("make", [lambda: Halved(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)),
                                  lambda: nn.Sequential(Shifted(3, 4), nn.Tanh(), nn.Linear(4, 1)),
                                  reused_layer])
def test_a_subclass_with_its_own_forward_is_not_stacked_by_hand(make):
    """Nor a layer used twice: the stack would give each use its own copy of the weights."""
    from glassloop.sweeps.stacks import SequentialStack

    torch.manual_seed(0)
    model = make()
    assert not SequentialStack.supports(model)
    with pytest.raises(ConfigError, match="bmm"):
        gl.sweep(lambda: make(), (torch.randn(16, 3), torch.randn(16, 1)), grid={"lr": [0.01, 0.02]}, epochs=1,
                 batch_size=8, method="bmm", verbose=False)
