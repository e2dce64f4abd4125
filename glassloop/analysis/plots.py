"""History -> a figure of the learning curves: loss (best epoch marked), learning rate, gradient norm.

matplotlib is imported here, inside the functions, so `import glassloop` never pays for it. Figures are drawn on
matplotlib's Agg canvas directly (`Figure` + `FigureCanvasAgg`), never through pyplot: that works headless, leaks
no figures in long sweeps, and leaves the user's own backend (a notebook's inline one included) untouched.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from glassloop.analysis.curves import epoch_text
from glassloop.analysis.diagnosis import Curves, diagnose, read_curves
from glassloop.errors import GlassloopError

LOG_SCALE_DECADES = 1.5  # a log axis once a panel's positive values span more than ~1.5 decades (x30)


def plot_history(history_or_records: Any, path: str | Path | None = None, *, live: bool = False):
    """Draw the curves of a `History` (or a list of epoch dicts) and return the matplotlib `Figure`.

    The x-axis is the epoch as people count it (1-based; see glassloop/analysis/curves.py). Panels: train/val loss (log scale when the values span > 1.5 decades, best epoch marked), learning rate, and
    gradient norm; a panel whose column is absent or all empty is left out. `path` writes a PNG. `live=True`
    also shows it in the running notebook, replacing the previous drawing (no-op outside IPython).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = read_curves(history_or_records)
    panels = [("loss", ("train_loss", "val_loss"))]
    for key, title in (("lr", "learning rate"), ("grad_norm", "gradient norm")):
        if _finite(curves, key):
            panels.append((title, (key,)))

    heights = [2.0] + [1.0] * (len(panels) - 1)
    height = 2.6 + 1.6 * (len(panels) - 1)
    # Fixed margins instead of constrained layout: the layout solver cost ~0.5 s a plot, more than a small fit.
    figure = Figure(figsize=(8, height))
    figure.subplots_adjust(left=0.12, right=0.97, top=1 - 0.45 / height, bottom=0.5 / height, hspace=0.25)
    FigureCanvasAgg(figure)
    axes = figure.subplots(
        len(panels), 1, sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False
    )[:, 0]

    for ax, (title, keys) in zip(axes, panels):
        drawn = []
        for key in keys:
            points = _points(curves, key)
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o" if len(points) <= 12 else None, markersize=3, label=key)
                drawn.extend(ys)
        _maybe_log(ax, drawn)
        ax.set_ylabel(title)
        if ax.get_yscale() == "linear":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useOffset=False)
        ax.grid(True, alpha=0.3)
    loss_axis = axes[0]
    _mark_best_and_failures(loss_axis, curves, history_or_records)
    if loss_axis.get_legend_handles_labels()[0]:
        loss_axis.legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("epoch")

    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=100)
    if live:
        _show_in_notebook(figure)
    return figure


def _mark_best_and_failures(ax: Any, curves: Curves, source: Any) -> None:
    try:
        diagnosis = diagnose(source)
    except GlassloopError:
        return
    if diagnosis.best_epoch is not None and diagnosis.best_value is not None:
        ax.axvline(diagnosis.best_epoch, color="tab:green", linestyle="--", linewidth=1)
        ax.plot(
            [diagnosis.best_epoch],
            [diagnosis.best_value],
            marker="*",
            markersize=12,
            color="tab:green",
            linestyle="none",
            label=f"best epoch {epoch_text(diagnosis.best_epoch)}",
        )
    for key in ("train_loss", "val_loss"):
        bad = [
            e
            for e, v in zip(curves.epochs, curves.columns.get(key, []))
            if v is not None and not math.isfinite(v)
        ]
        if bad:
            ax.axvline(bad[0], color="tab:red", linewidth=1, label=f"{key} non-finite")
            break
    ax.set_title(f"{diagnosis.title} ({diagnosis.code})", fontsize="medium")


def _points(curves: Curves, key: str) -> list[tuple[float, float]]:
    """(epoch, value) pairs with a finite value; NaN/Inf are left out (the failure is marked instead)."""
    values = curves.columns.get(key, [])
    return [(float(e), v) for e, v in zip(curves.epochs, values) if v is not None and math.isfinite(v)]


def _finite(curves: Curves, key: str) -> bool:
    return bool(_points(curves, key))


def _maybe_log(ax: Any, values: list[float]) -> None:
    if values and min(values) > 0 and math.log10(max(values) / min(values)) > LOG_SCALE_DECADES:
        from matplotlib.ticker import NullFormatter

        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())  # decade labels only; minor ones overlap


def _show_in_notebook(figure: Any) -> bool:
    """Replace the cell's output with the figure; False (and nothing shown) outside a running IPython."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, clear_output, display
    except ImportError:
        return False
    if get_ipython() is None:
        return False  # plain Python: printing an Image's repr to a terminal would help nobody
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    clear_output(wait=True)
    display(Image(data=buffer.getvalue()))
    return True


class LivePlot:
    """Callback that redraws the curves in a notebook at the end of every `every`-th epoch (and at the end).

    `gl.fit(..., callbacks=[LivePlot()])`. Outside IPython it does nothing unless `path` is given, in which case
    the PNG at `path` is rewritten instead (handy to watch from an image viewer).
    """

    def __init__(self, every: int = 1, path: str | Path | None = None) -> None:
        if every < 1:
            from glassloop.errors import ConfigError

            raise ConfigError(f"LivePlot(every={every!r}): expected a whole number of epochs >= 1")
        self.every = every
        self.path = path
        self.shown = 0  # how many times it drew: lets tests and users see it did something

    def on_epoch_end(self, state: Any) -> None:
        history = state.history
        if len(history) and len(history) % self.every == 0:
            self._draw(history)

    def on_fit_end(self, state: Any) -> None:
        if len(state.history) and len(state.history) % self.every != 0:
            self._draw(state.history)  # the last epochs were not drawn yet

    def _draw(self, history: Any) -> None:
        notebook = _in_ipython()
        if not notebook and self.path is None:
            return
        plot_history(history, self.path, live=notebook)
        self.shown += 1


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None
