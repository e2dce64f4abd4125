"""gl.TensorBoardLogger (issue 15 item 3) read back with tensorboard's own EventAccumulator: one point per epoch at
step = epoch + 1 with the values of history.records, the hparams, and still one point per epoch after a run
interrupted by SIGINT or SIGKILL in a subprocess is resumed."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from torch import nn

import glassloop as gl
from glassloop.callbacks.tensorboard import TensorBoardLogger
from glassloop.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "tracking" / "tensorboard_script.py"
spec = importlib.util.spec_from_file_location("tensorboard_script", SCRIPT)
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
KEYS = ("train_loss", "val_loss", "lr", "grad_norm", "seconds", "val_mae")


def read(log_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return accumulator


def assert_one_point_per_epoch(log_dir: Path, history: Any) -> None:
    accumulator = read(log_dir)
    assert set(KEYS) <= set(accumulator.Tags()["scalars"])
    for key in KEYS:
        points = accumulator.Scalars(key)
        assert [p.step for p in points] == [r["epoch"] + 1 for r in history.records], key  # 1-based, once each
        assert [p.value for p in points] == pytest.approx(history[key], rel=1e-6), key


def test_scalars_and_hparams_are_read_back(tmp_path):
    train, val = script.data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    history = gl.fit(model, train, val, optimizer="adamw", lr=3e-3, epochs=4, batch_size=32, seed=1,
                     metrics=["mae"], scheduler="cosine", verbose=False,
                     callbacks=[gl.EarlyStopping(patience=2), TensorBoardLogger(tmp_path / "tb")])
    assert_one_point_per_epoch(tmp_path / "tb", history)
    content = read(tmp_path / "tb").PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    values = start.session_start_info.hparams
    assert values["optimizer"].string_value == "AdamW" and values["lr"].number_value == pytest.approx(3e-3)
    assert (values["epochs"].number_value, values["batch_size"].number_value) == (4, 32)
    assert values["patience"].number_value == 2 and values["model.dropout"].number_value == pytest.approx(0.2)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} == {"train_loss", "val_loss", "val_mae"}


@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_a_resumed_run_has_one_point_per_epoch(tmp_path, how):
    run_dir, log_dir = tmp_path / "run", tmp_path / "tb"
    result = subprocess.run([sys.executable, str(SCRIPT), str(run_dir), str(log_dir), how], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == (0 if how == "sigint" else -signal.SIGKILL), result.stderr[-2000:]
    before = read(log_dir).Scalars("train_loss")
    assert [p.step for p in before] == ([1, 2] if how == "sigint" else [1, 2, 3, 4])

    history, _ = script.fit(run_dir, log_dir)  # resume=True
    assert len(history.records) == script.EPOCHS
    assert_one_point_per_epoch(log_dir, history)
    assert "_hparams_/session_start_info" in read(log_dir).PluginTagToContent("hparams")


def test_a_run_started_again_in_its_folder_replaces_the_old_points(tmp_path):
    # As after a kill before the first checkpoint: the fit starts from scratch, with the old points on disk.
    train, val = script.data()
    for epochs in (3, 2):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        history = gl.fit(model, train, val, epochs=epochs, seed=2, metrics=["mae"], verbose=False,
                         callbacks=[TensorBoardLogger(tmp_path / "tb")])
    assert_one_point_per_epoch(tmp_path / "tb", history)


def test_bad_options_and_a_missing_package_are_one_line_errors(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    for options, message in (({"log_dir": tmp_path / "file"}, "is a file"), ({"log_dir": ""}, "expected a folder"),
                             ({"log_dir": tmp_path, "flush_seconds": 0}, "> 0")):
        with pytest.raises(ConfigError, match=message):
            TensorBoardLogger(**options)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    with pytest.raises(ConfigError, match="pip install tensorboard") as error:
        TensorBoardLogger(tmp_path / "tb")
    assert "\n" not in str(error.value)
