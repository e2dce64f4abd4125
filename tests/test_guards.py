"""Guards: early stopping, latest.pt/best.pt, exact resume (in process and after kill -9), safe loading,
non-finite stops and signals."""

import math
import os
import random
import signal
import subprocess
import time

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.core.checkpoint import atomic_save, envelope
from glassloop.errors import CheckpointError, ConfigError
from tests.conftest import PYTHON, ROOT, mlp

SCRIPT = ROOT / "tests" / "scripts" / "train_checkpointed.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


# -- early stopping ------------------------------------------------------------------------------------------


class ScriptedVal:
    """Replaces the validation loss with a scripted sequence (so the test knows exactly when to stop)."""

    band = "producers"

    def __init__(self, values):
        self.values = values

    def on_epoch_end(self, state):
        state.record["val_loss"] = self.values[state.record["epoch"]]


def test_early_stopping_stops_exactly_patience_epochs_after_best(ssa_small):
    (x, y), val = ssa_small
    values = [1.0, 0.8, 0.5, 0.6, 0.7, 0.55, 0.9, 0.4, 0.3]
    stopper = gl.EarlyStopping(patience=3, restore_best=False)
    history = gl.fit(mlp(0), (x, y), val=val, epochs=len(values), callbacks=[ScriptedVal(values), stopper],
                     verbose=False)
    assert len(history.records) == 6  # best at epoch index 2, then 3 epochs without improvement
    assert stopper.best_epoch == 2
    assert history.stop_reason.startswith("early stopping: val_loss has not improved for 3 epochs")


def test_min_delta_and_max_mode():
    stopper = gl.EarlyStopping(monitor="val_accuracy", mode="max", min_delta=0.05)
    stopper.best = 0.8
    assert not stopper.improved(0.84) and stopper.improved(0.86)


def test_restore_best_weights_reproduce_best_val_loss(ssa_small):
    (x, y), val = ssa_small
    model = mlp(0, (4, 64, 64, 1))
    history = gl.fit(model, (x[:60], y[:60]), val=val, epochs=40, lr=1e-2, batch_size=8, seed=0,
                     callbacks=[gl.EarlyStopping(patience=5)], verbose=False)
    assert history.best_epoch < len(history.records) - 1  # it overfits the 60 rows, so the best is earlier
    assert gl.evaluate(model, val)["loss"] == pytest.approx(history.best_val_loss, rel=1e-6)


def test_unknown_monitor_lists_available_keys(ssa_small):
    (x, y), val = ssa_small
    with pytest.raises(ConfigError, match=r"monitor='val_los' is not in the epoch record; available: .*val_loss"):
        gl.fit(mlp(0), (x, y), val=val, epochs=2, callbacks=[gl.EarlyStopping(monitor="val_los")], verbose=False)


def test_bad_early_stopping_arguments():
    with pytest.raises(ConfigError, match="patience=0"):
        gl.EarlyStopping(patience=0)
    with pytest.raises(ConfigError, match="mode='lowest'"):
        gl.EarlyStopping(mode="lowest")


# -- checkpoints and in-process resume --------------------------------------------------------------------------


class CrashAt:
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_start(self, state):
        if state.epoch == self.epoch:
            raise RuntimeError("simulated crash")


def _run(run_dir, data, epochs=8, crash=None, resume=True):
    (x, y), val = data
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    callbacks = [gl.EarlyStopping(patience=50), gl.Checkpoint(run_dir, resume=resume)]
    if crash is not None:
        callbacks.insert(0, CrashAt(crash))
    history = gl.fit(model, (x, y), val=val, epochs=epochs, batch_size=32, scheduler="onecycle", seed=11,
                     callbacks=callbacks, verbose=False)
    return model, history


def _strip(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history.records]


def test_resume_after_crash_equals_uninterrupted_run_bitwise(ssa_small, tmp_path):
    reference, ref_history = _run(tmp_path / "a", ssa_small)
    with pytest.raises(gl.CallbackError, match="simulated crash"):
        _run(tmp_path / "b", ssa_small, crash=5)
    assert gl.load_checkpoint(tmp_path / "b" / "latest.pt")["epoch"] == 5
    resumed, history = _run(tmp_path / "b", ssa_small)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert _strip(history) == _strip(ref_history)
    assert history.best_epoch == ref_history.best_epoch


def test_latest_and_best_files_and_their_contents(ssa_small, tmp_path):
    model, history = _run(tmp_path, ssa_small, epochs=4)
    latest = gl.load_checkpoint(tmp_path / "latest.pt")
    best = gl.load_checkpoint(tmp_path / "best.pt")
    assert latest["kind"] == "latest" and latest["finished"] and latest["epoch"] == 4
    assert {"model", "optimizer", "scheduler", "rng", "batcher", "history", "callbacks", "config"} <= set(latest)
    assert "EarlyStopping:0" in latest["callbacks"]
    assert best["epoch"] == history.best_epoch
    assert best["record"]["val_loss"] == history.best_val_loss
    assert (tmp_path / "history.csv").read_text().count("\n") == 5
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_resuming_a_finished_run_says_so_and_changes_nothing(ssa_small, tmp_path, capsys):
    first, history = _run(tmp_path, ssa_small, epochs=3)
    before = (tmp_path / "latest.pt").read_bytes()
    again, history2 = _run(tmp_path, ssa_small, epochs=3)
    assert "already finished" in capsys.readouterr().out
    assert (tmp_path / "latest.pt").read_bytes() == before
    assert _strip(history2) == _strip(history)
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_on_missing_or_empty_directory_starts_fresh(ssa_small, tmp_path):
    (tmp_path / "empty").mkdir()
    _, history = _run(tmp_path / "empty", ssa_small, epochs=2)
    _, history2 = _run(tmp_path / "missing", ssa_small, epochs=2)
    assert len(history.records) == len(history2.records) == 2


def test_resume_restores_early_stopping_counters(ssa_small, tmp_path):
    (x, y), val = ssa_small
    values = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]

    def run(crash):
        callbacks = [ScriptedVal(values), gl.EarlyStopping(patience=4, restore_best=False),
                     gl.Checkpoint(tmp_path, resume=True)]
        if crash is not None:
            callbacks.insert(0, CrashAt(crash))
        return gl.fit(mlp(0), (x, y), val=val, epochs=len(values), callbacks=callbacks, verbose=False)

    with pytest.raises(gl.CallbackError):
        run(crash=3)  # wait counter is 1 when it crashes
    history = run(crash=None)
    assert len(history.records) == 6 and history.stop_reason.startswith("early stopping")


# -- safe loading ----------------------------------------------------------------------------------------------


class Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_carrying_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "latest.pt"
    torch.save(envelope("latest", model={}, payload=Hostile(str(marker))), path)
    with pytest.raises(CheckpointError, match="refused to load .*latest.pt"):
        gl.load_checkpoint(path)
    assert not marker.exists()


def test_checkpoint_resume_refuses_hostile_latest(ssa_small, tmp_path):
    marker = tmp_path / "pwned"
    torch.save(envelope("latest", payload=Hostile(str(marker))), tmp_path / "latest.pt")
    with pytest.raises(CheckpointError, match="refused"):
        _run(tmp_path, ssa_small, epochs=2)
    assert not marker.exists()


def test_truncated_zero_byte_foreign_and_wrong_version_files(tmp_path, ssa_small):
    _run(tmp_path, ssa_small, epochs=1)
    data = (tmp_path / "latest.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "zero.pt").write_bytes(b"")
    (tmp_path / "garbage.pt").write_bytes(os.urandom(300))
    torch.save({"weight": torch.ones(2)}, tmp_path / "foreign.pt")
    atomic_save({**envelope("latest"), "version": 99}, tmp_path / "future.pt")
    cases = {"trunc.pt": "truncated or corrupted", "zero.pt": "is empty", "garbage.pt": "truncated or corrupted",
             "foreign.pt": "not a glassloop checkpoint", "future.pt": "format version 99",
             "absent.pt": "does not exist"}
    for name, message in cases.items():
        with pytest.raises(CheckpointError, match=message) as info:
            gl.load_checkpoint(tmp_path / name)
        assert "\n" not in str(info.value) and name in str(info.value)


# -- non-finite guard ------------------------------------------------------------------------------------------


def test_nan_stops_at_that_step_keeps_best_and_last_good_latest(ssa_small, tmp_path):
    (x, y), val = ssa_small
    x = x.clone()
    model = mlp(0)

    class PoisonAt:
        def on_epoch_start(self, state):
            if state.epoch == 3:
                x[:] = float("nan")  # the batcher holds this tensor: every later batch is NaN

    history = gl.fit(model, (x, y), val=val, epochs=10, batch_size=400, seed=0, verbose=False,
                     callbacks=[PoisonAt(), gl.Checkpoint(tmp_path)])
    assert "non-finite loss (nan) at epoch 4, batch 1" in history.stop_reason
    assert "Lower the learning rate ~10x" in history.stop_reason
    assert all(math.isfinite(v) for p in model.parameters() for v in p.detach().flatten().tolist())
    assert gl.load_checkpoint(tmp_path / "latest.pt")["epoch"] == 3  # the last good epoch
    assert gl.load_checkpoint(tmp_path / "best.pt")["epoch"] <= 2
    assert len(history.records) == 4 and math.isnan(history.records[-1]["train_loss"])


def test_exploding_learning_rate_is_caught_before_a_bad_step(ssa_small):
    (x, y), _ = ssa_small
    history = gl.fit(mlp(0), (x * 1e6, y), optimizer="sgd", lr=10.0, epochs=20, verbose=False)
    assert history.stop_reason.startswith("non-finite")


# -- kill -9 and signals (real subprocesses) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run([PYTHON, str(SCRIPT), str(run_dir)], check=True, env=ENV, capture_output=True, timeout=120)
    return torch.load(run_dir / "final.pt", weights_only=True)


def _start(run_dir):
    process = subprocess.Popen([PYTHON, str(SCRIPT), str(run_dir)], env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def _assert_same_as(reference, run_dir):
    final = torch.load(run_dir / "final.pt", weights_only=True)
    for key, tensor in reference["model"].items():
        assert torch.equal(tensor, final["model"][key]), key
    assert final["records"] == reference["records"]
    assert final["best_epoch"] == reference["best_epoch"]


@pytest.mark.parametrize("trial", range(10))
def test_kill_9_at_a_random_instant_then_resume_is_bitwise_identical(uninterrupted, tmp_path, trial):
    rng = random.Random(trial)
    process = _start(tmp_path)
    time.sleep(rng.uniform(0.0, 0.5))  # the training itself takes 1-3 s: kills land mid-epoch and mid-save
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (tmp_path / "final.pt").exists()  # the kill really landed before the end
    if (tmp_path / "latest.pt").exists():
        latest = gl.load_checkpoint(tmp_path / "latest.pt")  # never corrupted, whatever the instant
        best = gl.load_checkpoint(tmp_path / "best.pt")  # written before latest.pt: always there with it
        # best.pt is latest.pt's best epoch, or one from the epoch being saved when the kill landed (redone on resume)
        assert best["epoch"] == latest["history"]["best_epoch"] or best["epoch"] >= latest["epoch"]
    result = subprocess.run([PYTHON, str(SCRIPT), str(tmp_path)], env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    _assert_same_as(uninterrupted, tmp_path)


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_mid_epoch_and_resume_is_bitwise_identical(uninterrupted, tmp_path, signum, code):
    process = _start(tmp_path)
    time.sleep(0.4)
    process.send_signal(signum)
    assert process.wait(timeout=30) == code, process.stderr.read()
    latest = gl.load_checkpoint(tmp_path / "latest.pt")
    assert not latest["finished"]
    result = subprocess.run([PYTHON, str(SCRIPT), str(tmp_path)], env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    _assert_same_as(uninterrupted, tmp_path)


@pytest.mark.parametrize("when", ["during the last batch", "after the last batch"])
def test_signal_at_the_end_of_an_epoch_resumes_bitwise(ssa_small, tmp_path, monkeypatch, when):
    # SIGINT during an epoch's last step leaves the epoch "cut short" with no batches left; SIGINT after the batch
    # loop ran out (before validation) leaves it complete. Either way the resumed run must equal the plain one.
    from glassloop.core.batches import TensorBatcher

    (x, y), val = ssa_small
    armed = {"on": False}
    original = TensorBatcher.epoch

    def epoch_then_signal(self):
        yield from original(self)
        if armed["on"] and when == "after the last batch":
            armed["on"] = False
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(TensorBatcher, "epoch", epoch_then_signal)

    class Interrupt:
        def on_batch_end(self, state):
            if state.epoch == 1 and state.batch_index == 3:  # the last of 4 batches
                if when == "during the last batch":
                    os.kill(os.getpid(), signal.SIGINT)
                else:
                    armed["on"] = True

    def run(callbacks):
        torch.manual_seed(5)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        return model, gl.fit(model, (x, y), val=val, epochs=4, batch_size=100, seed=2, verbose=False,
                             callbacks=callbacks)

    reference, ref_history = run([])
    _, interrupted = run([Interrupt(), gl.Checkpoint(tmp_path)])
    assert interrupted.signal == signal.SIGINT
    assert len(interrupted.records) == (1 if when == "during the last batch" else 2)
    resumed, history = run([gl.Checkpoint(tmp_path, resume=True)])
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert _strip(history) == _strip(ref_history)


# -- review findings: each of these was a real defect ----------------------------------------------------------


def test_a_reused_early_stopping_starts_fresh_for_each_fit(ssa_small):
    (x, y), val = ssa_small
    stopper = gl.EarlyStopping(patience=3)
    gl.fit(mlp(0), (x, y), val=val, lr=1e-1, epochs=15, callbacks=[stopper], verbose=False)
    model = mlp(1)
    history = gl.fit(model, (x, y), val=val, lr=1e-4, epochs=5, callbacks=[stopper], verbose=False)
    assert len(history.records) == 5 and history.stop_reason == "completed 5 epochs"
    assert gl.evaluate(model, val)["loss"] == pytest.approx(history.best_val_loss, rel=1e-6)


def test_interrupt_during_validation_resumes_with_the_same_schedule(ssa_small, tmp_path):
    (x, y), val = ssa_small
    fired = {"done": False}

    def interrupting_metric(outputs, targets):
        if fired["armed"] and not fired["done"]:
            fired["done"] = True
            os.kill(os.getpid(), signal.SIGINT)  # lands while validating epoch 2
        return (outputs - targets).abs().mean()

    def run(callbacks, armed):
        fired["armed"] = armed
        torch.manual_seed(5)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

        class Arm:
            def on_epoch_start(self, state):
                fired["armed"] = armed and state.epoch == 1

        return model, gl.fit(model, (x, y), val=val, epochs=5, batch_size=100, seed=2, scheduler="cosine", lr=0.05,
                             metrics={"mae": interrupting_metric}, verbose=False, callbacks=[Arm(), *callbacks])

    reference, ref_history = run([], armed=False)
    _, interrupted = run([gl.Checkpoint(tmp_path)], armed=True)
    assert interrupted.signal == signal.SIGINT
    resumed, history = run([gl.Checkpoint(tmp_path, resume=True)], armed=False)
    assert history["lr"] == ref_history["lr"]
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_dataset_input_resumes_bitwise(ssa_small, tmp_path):
    from torch.utils.data import TensorDataset

    (x, y), val = ssa_small

    def run(callbacks):
        torch.manual_seed(5)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        return model, gl.fit(model, TensorDataset(x, y), val=val, epochs=4, batch_size=50, seed=9, verbose=False,
                             callbacks=callbacks)

    reference, ref_history = run([])
    with pytest.raises(gl.CallbackError):
        run([CrashAt(2), gl.Checkpoint(tmp_path)])
    resumed, history = run([gl.Checkpoint(tmp_path, resume=True)])
    assert _strip(history) == _strip(ref_history)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_a_failing_disk_fails_the_run_early_and_never_hides_the_users_error(ssa_small, tmp_path, monkeypatch,
                                                                            capsys):
    import glassloop.core.checkpoint as checkpoint_module

    (x, y), val = ssa_small
    original = checkpoint_module.write_file
    writes = {"n": 0, "fail_after": 2}

    def full_disk(data, path):
        if path.suffix == ".pt":  # checkpoints only (history.csv is written on the training thread)
            writes["n"] += 1
            if writes["n"] > writes["fail_after"]:
                raise OSError(28, "No space left on device")
        original(data, path)

    monkeypatch.setattr(checkpoint_module, "write_file", full_disk)
    with pytest.raises(gl.CallbackError, match="Checkpoint failed in on_epoch_end: OSError.*No space left"):
        gl.fit(mlp(0), (x, y), val=val, epochs=30, callbacks=[gl.Checkpoint(tmp_path / "a")], verbose=False)
    assert writes["n"] < 10  # it stopped at the next write, not after 30 epochs

    class UserBug:  # user band: runs before the checkpoint in on_epoch_end
        def on_epoch_end(self, state):
            if state.epoch == 1:
                raise ValueError("user bug")

    writes.update(n=0, fail_after=1)  # epoch 0's best.pt lands, its latest.pt write fails in the background
    with pytest.raises(gl.CallbackError, match="ValueError: user bug"):
        gl.fit(mlp(0), (x, y), val=val, epochs=30, callbacks=[UserBug(), gl.Checkpoint(tmp_path / "b")],
               verbose=False)
    assert "a checkpoint write failed too" in capsys.readouterr().err


def test_nan_stop_keeps_history_best_pt_and_restored_weights_in_agreement(ssa_small, tmp_path):
    (x, y), val = ssa_small
    x = x.clone()

    class PoisonMidEpoch:
        def on_batch_start(self, state):
            if state.epoch == 3 and state.batch_index == 2:
                x[:] = float("nan")

    model = mlp(0)
    history = gl.fit(model, (x, y), val=val, epochs=10, batch_size=100, lr=1e-2, seed=0, verbose=False,
                     callbacks=[PoisonMidEpoch(), gl.EarlyStopping(), gl.Checkpoint(tmp_path)])
    assert history.stop_reason.startswith("non-finite")
    best = gl.load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == history.best_epoch
    assert gl.evaluate(model, val)["loss"] == pytest.approx(history.best_val_loss, rel=1e-6)


def test_history_and_best_pt_follow_the_early_stopping_monitor(ssa_small, tmp_path):
    (x, y), val = ssa_small
    history = gl.fit(mlp(0, (4, 64, 64, 1)), (x[:60], y[:60]), val=val, epochs=25, lr=1e-2, batch_size=8, seed=0,
                     callbacks=[gl.EarlyStopping(monitor="train_loss", patience=50), gl.Checkpoint(tmp_path)],
                     verbose=False)
    train_losses = history["train_loss"]
    assert history.monitor == "train_loss"
    assert history.best_epoch == min(range(len(train_losses)), key=train_losses.__getitem__)
    assert gl.load_checkpoint(tmp_path / "best.pt")["epoch"] == history.best_epoch


def test_finished_latest_records_why_it_ended(ssa_small, tmp_path, capsys):
    _run(tmp_path, ssa_small, epochs=2)
    assert gl.load_checkpoint(tmp_path / "latest.pt")["history"]["stop_reason"] == "completed 2 epochs"
    _run(tmp_path, ssa_small, epochs=2)
    assert "already finished (completed 2 epochs)" in capsys.readouterr().out


def test_resume_refuses_a_run_with_other_settings(ssa_small, tmp_path):
    (x, y), val = ssa_small
    gl.fit(mlp(0), (x, y), val=val, epochs=2, batch_size=32, seed=1, callbacks=[gl.Checkpoint(tmp_path)],
           verbose=False)
    with pytest.raises(CheckpointError, match=r"batch_size=32 but this fit has batch_size=16"):
        gl.fit(mlp(0), (x, y), val=val, epochs=4, batch_size=16, seed=1,
               callbacks=[gl.Checkpoint(tmp_path, resume=True)], verbose=False)


def test_every_seconds_writes_latest_less_often_and_still_resumes_exactly(ssa_small, tmp_path):
    (x, y), val = ssa_small

    def run(callbacks):
        torch.manual_seed(5)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        return model, gl.fit(model, (x, y), val=val, epochs=6, batch_size=100, seed=2, verbose=False,
                             callbacks=callbacks)

    reference, ref_history = run([])
    with pytest.raises(gl.CallbackError):
        run([CrashAt(4), gl.Checkpoint(tmp_path, every_seconds=1e9)])
    latest = gl.load_checkpoint(tmp_path / "latest.pt")
    assert latest["epoch"] == 1  # only the first epoch was written before the crash
    assert gl.load_checkpoint(tmp_path / "best.pt")["epoch"] >= latest["history"]["best_epoch"]
    resumed, history = run([gl.Checkpoint(tmp_path, resume=True, every_seconds=1e9)])
    assert _strip(history) == _strip(ref_history)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert gl.load_checkpoint(tmp_path / "latest.pt")["finished"]
    assert gl.load_checkpoint(tmp_path / "best.pt")["epoch"] == history.best_epoch
