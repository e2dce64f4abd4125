"""Runs you can extend (issue 12 item 5): a finished run continues to more epochs exactly when its schedule does
not depend on the total; every other case is one line, and the messages agree with each other."""

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.errors import CheckpointError


def _data():
    torch.manual_seed(1)
    x = torch.rand(64, 4)
    y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(64, 1)
    return (x[:48], y[:48]), (x[48:], y[48:])


def _fit(run_dir, epochs, scheduler=None, patience=50, resume=True, verbose=False, lr=1e-2):
    (x, y), val = _data()
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 1))
    callbacks = [gl.EarlyStopping(patience=patience)]
    if run_dir is not None:
        callbacks.append(gl.Checkpoint(run_dir, resume=resume, plot=False))
    history = gl.fit(model, (x, y), val=val, epochs=epochs, batch_size=16, seed=4, lr=lr, verbose=verbose,
                     scheduler=scheduler, callbacks=callbacks)
    return model, history


def _strip(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history.records]


def _assert_same(a, b):
    (model_a, history_a), (model_b, history_b) = a, b
    for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values()):
        assert torch.equal(x, y)
    assert _strip(history_a) == _strip(history_b)
    assert history_a.best_epoch == history_b.best_epoch and history_a.stop_reason == history_b.stop_reason


@pytest.mark.parametrize("scheduler,first,total", [(None, 3, 6), ("plateau", 3, 6), ("step", 3, 5)])
def test_extending_a_completed_run_equals_running_the_total_from_the_start(tmp_path, scheduler, first, total):
    # step: StepLR(step_size=epochs // 3) is 1 for both 3 and 5 epochs, so that extension is exact too
    reference = _fit(None, total, scheduler)
    _fit(tmp_path, first, scheduler)
    extended = _fit(tmp_path, total, scheduler)
    _assert_same(reference, extended)
    assert extended[1].stop_reason == f"completed {total} epochs"
    assert gl.load_checkpoint(tmp_path / "latest.pt")["epoch"] == total


def test_extension_says_what_it_does_and_agrees_with_the_console(tmp_path, capsys):
    _fit(tmp_path, 3)
    capsys.readouterr()
    _fit(tmp_path, 5, verbose=True)
    out = capsys.readouterr().out
    assert f"Run in {tmp_path} completed 3 epochs; extending it to 5." in out
    assert "Resuming at epoch 4/5" in out and "nothing to resume" not in out


def test_a_finished_run_with_the_same_epochs_never_says_resuming(tmp_path, capsys):
    _fit(tmp_path, 3)
    capsys.readouterr()
    _, history = _fit(tmp_path, 3, verbose=True)
    out = capsys.readouterr().out
    assert "already finished (completed 3 epochs); nothing to resume." in out
    assert "Resuming at epoch" not in out and len(history.records) == 3


@pytest.mark.parametrize("scheduler,named", [("cosine", "T_max: 3 saved, 6 now"), ("exponential", "gamma"),
                                             ("onecycle", "total_steps: 9 saved, 18 now"),
                                             ("warmup_cosine", "warm-up and cosine"), ("step", "step_size")])
def test_a_schedule_sized_by_the_total_is_refused_in_one_line(tmp_path, scheduler, named):
    _fit(tmp_path, 3, scheduler)
    before = (tmp_path / "latest.pt").read_bytes()
    with pytest.raises(CheckpointError) as info:
        _fit(tmp_path, 6, scheduler)
    message = str(info.value)
    assert "\n" not in message and named in message and "from epochs=3 to epochs=6" in message
    assert "train a new run directory with epochs=6" in message
    assert (tmp_path / "latest.pt").read_bytes() == before


def test_a_user_scheduler_whose_horizon_changed_is_refused_too(tmp_path):
    (x, y), val = _data()

    def run(epochs):
        model = nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return gl.fit(model, (x, y), val=val, optimizer=optimizer, scheduler=schedule, epochs=epochs,
                      verbose=False, callbacks=[gl.Checkpoint(tmp_path, resume=True, plot=False)])

    run(2)
    with pytest.raises(CheckpointError, match="T_max: 2 saved, 4 now"):
        run(4)


def test_an_early_stopped_run_is_finished_and_not_extended(tmp_path, capsys):
    _, stopped = _fit(tmp_path, 40, patience=1, lr=0.3)
    assert stopped.stop_reason.startswith("early stopping") and len(stopped.records) < 40
    before = (tmp_path / "latest.pt").read_bytes()
    capsys.readouterr()
    _, again = _fit(tmp_path, 80, patience=1, lr=0.3, verbose=True)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "already finished" in line]
    assert len(lines) == 1 and "only a run that completed all its epochs is extended" in lines[0]
    assert "Resuming at epoch" not in out
    assert _strip(again) == _strip(stopped) and (tmp_path / "latest.pt").read_bytes() == before


def test_an_unfinished_run_resumed_with_fewer_epochs_than_it_trained_is_one_line(tmp_path):
    class StopAt:
        def on_epoch_start(self, state):
            if state.epoch == 4:
                raise RuntimeError("simulated crash")

    (x, y), val = _data()
    with pytest.raises(gl.CallbackError):
        gl.fit(nn.Linear(4, 1), (x, y), val=val, epochs=8, verbose=False,
               callbacks=[StopAt(), gl.Checkpoint(tmp_path, plot=False)])
    with pytest.raises(CheckpointError, match=r"has trained 4 epochs already, more than epochs=3; resume with "
                                              r"epochs>=4 \(it was started with epochs=8\)"):
        gl.fit(nn.Linear(4, 1), (x, y), val=val, epochs=3, verbose=False,
               callbacks=[gl.Checkpoint(tmp_path, resume=True, plot=False)])
