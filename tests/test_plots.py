"""Curve plots: a real PNG, the right panels and scales, the best epoch marked, lazy matplotlib, LivePlot."""

from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace

import pytest

from glassloop.analysis.plots import LivePlot, plot_history
from glassloop.core.state import History

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def full_history(epochs: int = 40) -> History:
    history = History()
    for epoch in range(epochs):
        history.append({
            "epoch": epoch,
            "train_loss": 2.0 / (1 + epoch),
            "val_loss": 2.2 / (1 + epoch) + 0.002 * epoch,  # turns up: best epoch in the middle
            "lr": 1e-3 * 0.5 * (1 + math.cos(math.pi * epoch / epochs)),
            "grad_norm": 3.0 / math.sqrt(1 + epoch),
            "seconds": 0.01,
        })  # fmt: skip
    return history


def test_png_is_written_and_valid(tmp_path):
    path = tmp_path / "run" / "curves.png"
    figure = full_history().plot(path)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 300 and height > 300
    assert type(figure).__name__ == "Figure"


def test_panels_follow_the_columns():
    assert [ax.get_ylabel() for ax in plot_history(full_history()).axes] == [
        "loss",
        "learning rate",
        "gradient norm",
    ]
    bare = [{"train_loss": 1.0 / (1 + i), "lr": None, "grad_norm": None} for i in range(10)]
    assert [ax.get_ylabel() for ax in plot_history(bare).axes] == ["loss"]


def test_log_scale_only_when_the_range_spans_decades():
    wide = plot_history([{"train_loss": 10.0**-i} for i in range(5)])  # 4 decades
    narrow = plot_history([{"train_loss": 1.0 - 0.05 * i} for i in range(5)])
    with_zero = plot_history([{"train_loss": v} for v in (100.0, 1.0, 0.0)])  # not all positive: stays linear
    assert wide.axes[0].get_yscale() == "log"
    assert narrow.axes[0].get_yscale() == "linear"
    assert with_zero.axes[0].get_yscale() == "linear"


def test_best_epoch_is_marked_one_based_for_a_history():
    history = full_history()
    loss_axis = plot_history(history).axes[0]
    best_on_screen = history.best_epoch + 1
    vertical = [line.get_xdata()[0] for line in loss_axis.get_lines() if line.get_linestyle() == "--"]
    assert vertical == [best_on_screen]
    labels = loss_axis.get_legend_handles_labels()[1]
    assert f"best epoch {best_on_screen}" in labels and "train_loss" in labels and "val_loss" in labels
    assert loss_axis.get_title() == f"{history.diagnose().title} ({history.diagnose().code})"


def test_records_with_given_epochs_and_non_finite_values(tmp_path):
    rows = [
        {"epoch": e, "train_loss": v} for e, v in [(1, 1.0), (10, 0.5), (20, float("nan")), (30, math.inf)]
    ]
    figure = plot_history(rows, tmp_path / "nan.png")
    assert (tmp_path / "nan.png").read_bytes().startswith(PNG_MAGIC)
    loss_axis = figure.axes[0]
    plotted = [line for line in loss_axis.get_lines() if line.get_label() == "train_loss"][0]
    assert list(plotted.get_xdata()) == [1.0, 10.0]  # NaN/Inf left out...
    assert "train_loss non-finite" in loss_axis.get_legend_handles_labels()[1]  # ...and marked instead


def test_import_glassloop_does_not_import_matplotlib():
    code = "import sys, glassloop, glassloop.analysis.diagnosis, glassloop.analysis.plots; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_plotting_leaves_the_backend_and_pyplot_alone():
    code = (
        "import sys, matplotlib; matplotlib.use('svg'); "
        "from glassloop.analysis.plots import plot_history; plot_history([{'train_loss': 1.0}, {'train_loss': 0.5}]); "
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "svg False"


def test_live_plot_is_a_no_op_outside_ipython(tmp_path):
    callback = LivePlot()
    state = SimpleNamespace(history=full_history(5))
    callback.on_epoch_end(state)
    callback.on_fit_end(state)
    assert callback.shown == 0
    to_file = LivePlot(every=2, path=tmp_path / "live.png")
    to_file.on_epoch_end(SimpleNamespace(history=full_history(4)))
    assert to_file.shown == 1 and (tmp_path / "live.png").read_bytes().startswith(PNG_MAGIC)
    to_file.on_epoch_end(SimpleNamespace(history=full_history(5)))  # not a multiple of 2: skipped
    assert to_file.shown == 1
    to_file.on_fit_end(SimpleNamespace(history=full_history(5)))  # but the last epoch is drawn at the end
    assert to_file.shown == 2


def test_live_plot_redraws_in_a_notebook(monkeypatch):
    import IPython
    import IPython.display

    calls = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "clear_output", lambda wait=False: calls.append(("clear", wait)))
    monkeypatch.setattr(IPython.display, "display", lambda obj: calls.append(("display", obj.data[:8])))
    callback = LivePlot()
    for epochs in (1, 2, 3):
        callback.on_epoch_end(SimpleNamespace(history=full_history(epochs)))
    assert callback.shown == 3
    assert calls == [("clear", True), ("display", PNG_MAGIC)] * 3


def test_live_plot_rejects_a_bad_interval():
    from glassloop.errors import ConfigError

    with pytest.raises(ConfigError):
        LivePlot(every=0)


def test_a_history_csv_is_plotted_with_its_own_one_based_epochs(tmp_path):
    from glassloop.analysis.diagnosis import load_history

    (tmp_path / "history.csv").write_text("epoch,train_loss,val_loss\n1,1.0,1.2\n2,0.5,0.7\n3,0.4,0.9\n")
    loss_axis = plot_history(load_history(tmp_path)).axes[0]
    plotted = [line for line in loss_axis.get_lines() if line.get_label() == "val_loss"][0]
    assert list(plotted.get_xdata()) == [1.0, 2.0, 3.0]
    vertical = [line.get_xdata()[0] for line in loss_axis.get_lines() if line.get_linestyle() == "--"]
    assert vertical == [2] and "best epoch 2" in loss_axis.get_legend_handles_labels()[1]
