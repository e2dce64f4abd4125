"""Read learning curves: a `History` (or a list of epoch dicts) -> a labelled `Diagnosis` with evidence and advice.

Codes are stable (documented in docs/diagnosis.md):

    GL300 healthy        GL304 diverging        GL308 too few epochs to judge (info)
    GL301 overfitting    GL305 oscillating      GL309 no validation data (info)
    GL302 underfitting   GL306 plateau
    GL303 not converged  GL307 non-finite loss (label: diverging)

Every threshold is scale-free (relative to the curve's own level, start or range, or to its own noise), so a
loss of 1e5 and a loss of 1e-3 with the same shape get the same diagnosis. The advice is lesson 004's rule of
thumb: diverges -> LR / 10; improves slowly -> LR x 3; plateaus -> cosine or step decay; overfits -> keep the
best epoch (early stopping) or regularise.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glassloop.errors import DataError

LABELS = ("healthy", "overfitting", "underfitting", "not converged", "diverging", "oscillating", "plateau")
CODES: dict[str, str] = {
    "GL300": "healthy",
    "GL301": "overfitting",
    "GL302": "underfitting",
    "GL303": "not converged",
    "GL304": "diverging",
    "GL305": "oscillating",
    "GL306": "plateau",
    "GL307": "diverging",  # non-finite loss: the extreme case of divergence
    "GL308": "too few epochs",
    "GL309": "no validation",
}
TITLES = {"not converged": "not converged (still improving)"}

# Thresholds. All relative: to the curve's level, its start, its range, or its own noise.
DIVERGE_RISE = 0.20  # train loss ends >= 20% above its best: the optimiser is climbing, not descending
OVERFIT_RISE = 0.05  # val loss ends >= 5% above its best while train loss does not rise
MEMORISE_TRAIN_KEEP = 0.25  # ...or train fell to <= 25% of its start while val kept >= 75% of its start
MEMORISE_VAL_KEEP = 0.75
OSCILLATION_SWING = 0.20  # typical swing around the trend >= 20% of the loss level ...
OSCILLATION_RANGE = 0.05  # ... and >= 5% of the curve's whole range (noise at a low floor is not "wild")
OSCILLATION_WILD = 0.35  # ... or >= 35% of the level, whatever the range
UNDERFIT_KEEP = 0.50  # train loss still holds >= half of its starting value once it stopped moving
STILL_FALLING_REMAINING = 0.20  # extrapolated further drop >= 20% of the current level = not converged
TAIL_MIN_DROP = 0.01  # the last 40% of the run must have fallen >= 1% to count as "still falling"
PLATEAU_TOLERANCE = 0.01  # "no improvement" = within 1% of the final best (or the noise, if larger)
PLATEAU_FRACTION = 0.50  # flat for at least half of the run = plateau
CURVATURE_Z = 2.0  # the tail must bend (slow down) by more than 2 noise deviations to count as levelling off
IMPROVEMENT_Z = 2.0  # a plateau's last half must show a drop of 2 noise deviations to count as improving
NOISE_Z = 3.0  # a change counts only when it exceeds 3 noise standard deviations
MIN_EPOCHS = 3  # fewer points than this cannot show a trend


@dataclass(frozen=True)
class Finding:
    """One observation about the curves: a stable code, what was seen (with epochs and values), what to do."""

    code: str
    label: str
    severity: str  # "error", "warning" or "info"
    evidence: str
    advice: str

    def to_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "label": self.label,
            "severity": self.severity,
            "evidence": self.evidence,
            "advice": self.advice,
        }


@dataclass
class Diagnosis:
    """The verdict on a run. `label` is one of `LABELS`; `findings[0]` is the finding that decided it.

    `best_epoch` uses the same numbering as the evidence text: 1-based for a `History` (whose records are 0-based
    in code), the numbers as given for epoch dicts that carry `epoch`, and 1..n for dicts that do not.
    `best_index` is the position of that epoch in the records.
    """

    label: str
    findings: list[Finding]
    best_epoch: int | float | None = None
    best_index: int | None = None
    best_value: float | None = None
    monitor: str = "val_loss"
    epochs: int = 0
    stop_reason: str | None = None

    @property
    def code(self) -> str:
        return self.findings[0].code

    @property
    def codes(self) -> list[str]:
        return [finding.code for finding in self.findings]

    @property
    def title(self) -> str:
        """The label as shown to people: "not converged (still improving)"."""
        return TITLES.get(self.label, self.label)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (non-finite numbers become None): for `--format json` and MLflow."""
        return {
            "label": self.label,
            "code": self.code,
            "best_epoch": self.best_epoch,
            "best_value": _json_number(self.best_value),
            "monitor": self.monitor,
            "epochs": self.epochs,
            "stop_reason": self.stop_reason,
            "findings": [finding.to_dict() for finding in self.findings],
        }

    def tags(self) -> dict[str, str]:
        """Flat string tags for an experiment tracker (MLflow tags are strings)."""
        tags = {
            "glassloop.analysis.diagnosis": self.label,
            "glassloop.analysis.diagnosis.code": self.code,
            "glassloop.analysis.diagnosis.codes": ",".join(self.codes),
            "glassloop.analysis.diagnosis.summary": self.findings[0].evidence,
        }
        if self.best_epoch is not None:
            tags["glassloop.best_epoch"] = _epoch_text(self.best_epoch)
        return tags

    def __str__(self) -> str:
        head = f"diagnosis: {self.title} ({self.code})"
        if self.best_epoch is not None and self.best_value is not None:
            head += f"; best epoch {_epoch_text(self.best_epoch)} ({self.monitor} {_fmt(self.best_value)})"
        lines = [head]
        for finding in self.findings:
            lines.append(f"  {finding.code} {finding.label} [{finding.severity}]")
            lines.append(f"    evidence: {finding.evidence}")
            lines.append(f"    advice:   {finding.advice}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- input


@dataclass
class Curves:
    """Epoch records made uniform: display epoch numbers plus one float-or-None list per column."""

    epochs: list[int | float]
    columns: dict[str, list[float | None]]
    best_epoch_hint: int | None = None  # History.best_epoch converted to a record index, if known
    stop_reason: str | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.epochs)

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(record indices, epoch numbers, values) where the column is present."""
        values = self.columns.get(key) or []
        index = np.array([i for i, v in enumerate(values) if v is not None], dtype=int)
        x = np.array([float(self.epochs[i]) for i in index], dtype=float)
        y = np.array([values[i] for i in index], dtype=float)
        return index, x, y


def read_curves(history_or_records: Any) -> Curves:
    """Accept a `History`, a list of epoch dicts, or a dict of per-epoch lists (the lessons' `history` dict)."""
    source = history_or_records
    from_history = hasattr(source, "records") and not isinstance(source, dict)
    stop_reason = getattr(source, "stop_reason", None) if from_history else None
    if from_history:
        records = list(source.records)
    elif isinstance(source, dict):
        lengths = {len(v) for v in source.values() if isinstance(v, (list, tuple))}
        if len(lengths) != 1:
            raise DataError(
                f"a dict of curves needs lists of equal length, got lengths {sorted(lengths)}; "
                "pass {'train_loss': [...], 'val_loss': [...]} or a list of epoch dicts"
            )
        count = lengths.pop()
        records = [{k: v[i] for k, v in source.items() if isinstance(v, (list, tuple))} for i in range(count)]
    elif isinstance(source, (list, tuple)):
        records = list(source)
    else:
        raise DataError(
            f"cannot diagnose a {type(source).__name__}; expected a History, a list of epoch dicts with "
            "'train_loss'/'val_loss', or a dict of lists"
        )
    if not records:
        raise DataError("no epochs to diagnose: the history is empty; train for at least one epoch")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(
                f"epoch record {i} is a {type(record).__name__}, expected a dict with 'train_loss'"
            )

    has_epoch = [record.get("epoch") is not None for record in records]
    if all(has_epoch):
        given = [_number(record["epoch"], "epoch", i) for i, record in enumerate(records)]
        if any(b <= a for a, b in zip(given, given[1:])):
            raise DataError(f"epoch numbers must increase, got {[_epoch_text(e) for e in given][:10]}")
        # A History counts epochs from 0 in code; people count from 1.
        epochs = [_as_int(e + 1 if from_history else e) for e in given]
    elif not any(has_epoch):
        epochs = list(range(1, len(records) + 1))
    else:
        raise DataError("some epoch records have an 'epoch' and some do not; give it in all or none")

    keys: list[str] = []
    for record in records:
        keys.extend(k for k in record if k not in keys and k != "epoch")
    columns: dict[str, list[float | None]] = {}
    for key in keys:
        values = [record.get(key) for record in records]
        if all(v is None or isinstance(v, str) and not _is_number_text(v) for v in values):
            continue  # a text column (e.g. a note) is not a curve
        columns[key] = [None if v is None or v == "" else _number(v, key, i) for i, v in enumerate(values)]
    if not any(v is not None for key in ("train_loss", "val_loss") for v in columns.get(key, [])):
        raise DataError(
            f"no 'train_loss' or 'val_loss' values in the records (columns: {', '.join(keys) or 'none'}); "
            "each epoch dict needs at least 'train_loss'"
        )

    hint = None
    best = getattr(source, "best_epoch", None) if from_history else None
    if best is not None:
        for i, record in enumerate(records):
            if record.get("epoch") == best:
                hint = i
    return Curves(epochs=epochs, columns=columns, best_epoch_hint=hint, stop_reason=stop_reason)


def load_history(path: str | Path):
    """Read a run's `history.csv` (as `History.to_csv` writes it; empty cell = None) back into a `History`."""
    from glassloop.core.state import History

    path = Path(path)
    if not path.exists():
        raise DataError(
            f"run directory {str(path)!r} does not exist; pass a directory made by 'glassloop fit'"
        )
    if path.is_dir():
        if not (path / "history.csv").is_file():
            raise DataError(f"no history.csv in {str(path)!r}; pass a run directory made by 'glassloop fit'")
        path = path / "history.csv"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {str(path)!r}: {error}") from error
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    if "train_loss" not in header and "val_loss" not in header:
        raise DataError(
            f"{str(path)!r} has no train_loss/val_loss column (header: {','.join(header) or 'empty'}); "
            "expected the columns History.to_csv writes: epoch,train_loss,val_loss,lr,grad_norm,seconds"
        )
    history = History()
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise DataError(
                f"{path}:{line}: expected {len(header)} fields like the header, got a different count"
            )
        record: dict[str, Any] = {}
        for key, cell in row.items():
            if cell == "":
                record[key] = None
            elif _is_number_text(cell):
                record[key] = _as_int(float(cell)) if key == "epoch" else float(cell)
            elif key in ("epoch", "train_loss", "val_loss", "lr", "grad_norm", "seconds") or key.startswith(
                "val_"
            ):
                raise DataError(f"{path}:{line}: {key}={cell!r} is not a number")
            else:
                record[key] = cell
        if record.get("epoch") is None:
            record["epoch"] = len(history.records)
        history.append(record)
    if not history.records:
        raise DataError(
            f"{str(path)!r} has a header but no epochs; was the run stopped before its first epoch?"
        )
    return history


# ---------------------------------------------------------------------------------------------- analysis


@dataclass
class _Curve:
    """One loss column with the statistics every rule needs."""

    name: str
    index: np.ndarray  # record positions
    x: np.ndarray  # epoch numbers as shown
    y: np.ndarray
    smooth: np.ndarray = field(init=False)
    noise: float = field(init=False)  # robust std of the raw values around the smoothed curve
    width: int = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.y)
        # A centred running median removes epoch-to-epoch noise but follows real trends; none for short runs.
        self.width = 1 if n < 20 else min(9, (n // 10) | 1)
        half = self.width // 2
        self.smooth = np.array([np.median(self.y[max(0, i - half) : i + half + 1]) for i in range(n)])
        # Noise from second differences of the second half: they cancel any locally linear trend, so what is
        # left is epoch-to-epoch jitter (var of a second difference of white noise = 6 sigma^2).
        wiggle = np.diff(self.y[n // 2 :], 2)
        self.noise = (
            float(1.4826 * np.median(np.abs(wiggle)) / math.sqrt(6)) if n >= 10 and wiggle.size else 0.0
        )

    @property
    def noise_of_smooth(self) -> float:
        # A median of m points is ~1.25/sqrt(m) as noisy as one point; at the ends the window is half as wide.
        return 1.25 * self.noise / math.sqrt(self.width // 2 + 1)

    @property
    def start(self) -> float:
        return float(self.y[0])

    @property
    def end(self) -> float:
        """The level at the last epoch: a median of the last few points, each carried forward along the local
        slope, so noise is ignored but a curve that is still moving is not read as where it was epochs ago."""
        if self.width == 1:
            return float(self.y[-1])
        last = slice(-self.width, None)
        slope, _ = _fit(self.x[last], self.y[last])
        return float(np.median(self.y[last] + slope * (self.x[-1] - self.x[last])))

    def scale(self, reference: float) -> float:
        """What "relative" means for this curve: its level when losses are positive, else its range."""
        if np.all(self.y > 0) and reference > 0:
            return reference
        spread = float(np.max(self.y) - np.min(self.y))
        return spread if spread > 0 else max(abs(reference), 1.0)

    def at(self, epoch: float) -> float:
        return float(np.interp(epoch, self.x, self.smooth))

    def end_text(self) -> str:
        if self.width == 1:
            return f"{_fmt(self.y[-1])} at epoch {_epoch_text(self.x[-1])}"
        return f"about {_fmt(self.end)} at epoch {_epoch_text(self.x[-1])} (median of the last epochs)"


@dataclass
class _Trend:
    """How the end of a curve is moving: the slope over the last 40% of the run and whether it is slowing."""

    falling: bool
    remaining: float  # extrapolated further drop, relative to the current level (inf: no sign of slowing)
    tail_drop: float  # relative drop over the tail window
    tail_start: float  # epoch where the tail window starts
    per_10: float  # relative drop per 10 epochs at the end


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept (x centred for accuracy)."""
    xc = x - x.mean()
    denominator = float(np.sum(xc * xc))
    slope = float(np.sum(xc * (y - y.mean())) / denominator) if denominator > 0 else 0.0
    return slope, float(y.mean() - slope * x.mean())


def _trend(curve: _Curve) -> _Trend | None:
    x, y = curve.x, curve.y
    n = len(y)
    if n < MIN_EPOCHS:
        return None
    first, last = x[0], x[-1]
    tail = np.nonzero(x >= first + 0.6 * (last - first))[0]
    if len(tail) < 4:
        tail = np.arange(max(0, n - 4), n)  # sparse tables: the last few rows are the tail
    xt, yt = x[tail], y[tail]
    slope, _ = _fit(xt, yt)
    spread = math.sqrt(float(np.sum((xt - xt.mean()) ** 2))) or 1.0
    speed = -slope  # positive = falling
    scale = curve.scale(curve.end)
    tail_drop = (curve.smooth[tail[0]] - curve.end) / scale
    per_10 = 10 * speed / scale
    falling = speed > NOISE_Z * curve.noise / spread and speed > 0 and tail_drop >= TAIL_MIN_DROP
    remaining = _remaining(xt, yt, float(last - first), curve.noise) / scale if falling else 0.0
    return _Trend(falling, remaining, float(tail_drop), float(xt[0]), float(per_10))


def _remaining(x: np.ndarray, y: np.ndarray, span: float, noise: float) -> float:
    """How much further the curve would fall if training went on: fit y = a + b * exp(-(x - x_end) / tau) to
    the tail (least squares, tau on a grid) and return b, the excess over the asymptote at the last epoch.
    inf when the best fit is a straight line (no sign of slowing down)."""
    steps = np.diff(x)
    taus = np.geomspace(max(float(steps.min()), 1e-9) / 2, 20 * max(span, 1.0), 160)
    best: tuple[float, float, float] | None = None  # (sse, tau, b)
    for tau in taus:
        basis = np.exp(np.clip((x[-1] - x) / tau, None, 700.0))
        design = np.column_stack([np.ones_like(x), basis])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = float(np.sum((design @ coef - y) ** 2))
        if best is None or sse < best[0] * (1 - 1e-9):
            best = (sse, float(tau), float(coef[1]))
    assert best is not None
    sse, tau, excess = best
    slope, intercept = _fit(x, y)
    straight = float(np.sum((slope * x + intercept - y) ** 2))
    if tau >= taus[-1]:
        return math.inf  # straight as far as the fit can tell: no end in sight
    if straight - sse <= CURVATURE_Z**2 * noise**2:
        # The bend is within the noise, so its extrapolation is not to be trusted: say what the same number of
        # epochs again would bring at the tail's average pace instead.
        return max(-slope, 0.0) * float(x[-1] - x[0])
    return max(excess, 0.0)


def _still_falling(trend: _Trend | None) -> bool:
    return trend is not None and trend.falling and trend.remaining >= STILL_FALLING_REMAINING


def _oscillation(curve: _Curve) -> tuple[float, int, int] | None:
    """(typical swing / level, direction changes, points) over the second half, if it swings wildly."""
    x, y = curve.x, curve.y
    tail = np.nonzero(x >= x[0] + 0.5 * (x[-1] - x[0]))[0]
    if len(tail) < 8:
        return None
    slope, intercept = _fit(x[tail], y[tail])
    residual = y[tail] - (slope * x[tail] + intercept)
    swing = float(1.4826 * np.median(np.abs(residual)))
    steps = np.diff(y[tail])
    changes = int(np.sum(steps[1:] * steps[:-1] < 0))
    level = float(np.median(y[tail]))
    whole_range = float(np.max(y) - np.min(y))
    relative = swing / curve.scale(level)
    if (
        relative >= OSCILLATION_WILD
        or relative >= OSCILLATION_SWING
        and swing >= OSCILLATION_RANGE * whole_range
    ) and changes >= max(3, (len(tail) - 2) // 4):
        return relative, changes, len(tail)
    return None


def diagnose(history_or_records: Any) -> Diagnosis:
    """Read the learning curves and say what they show, with the evidence and lesson 004's advice.

    Accepts a `History`, a list of epoch dicts (`train_loss`, optional `val_loss` and `epoch`), or a dict of
    per-epoch lists. Sparse tables (epochs 1, 10, 20, ...) work: trends use the epoch numbers, not positions.
    Raises `DataError` when there is nothing to read.
    """
    curves = read_curves(history_or_records)
    train = _curve(curves, "train_loss")
    val = _curve(curves, "val_loss")
    monitor = val if val is not None else train
    assert monitor is not None  # read_curves guarantees one of the two
    best_index, best_value = _best(curves, monitor.name)
    diagnosis = Diagnosis(
        label="healthy",
        findings=[],
        best_epoch=curves.epochs[best_index] if best_index is not None else None,
        best_index=best_index,
        best_value=best_value,
        monitor=monitor.name,
        epochs=len(curves),
        stop_reason=curves.stop_reason,
    )
    findings = _findings(curves, train, val, diagnosis)
    diagnosis.findings = findings
    diagnosis.label = findings[0].label
    return diagnosis


def _curve(curves: Curves, key: str) -> _Curve | None:
    index, x, y = curves.series(key)
    return _Curve(key, index, x, y) if len(y) else None


def _best(curves: Curves, key: str) -> tuple[int | None, float | None]:
    """The record with the lowest finite value of the monitored loss (what best.pt holds)."""
    if curves.best_epoch_hint is not None:
        value = curves.columns.get(key, [None] * len(curves))[curves.best_epoch_hint]
        if value is not None and math.isfinite(value):
            return curves.best_epoch_hint, value
    index, _, y = curves.series(key)
    finite = np.isfinite(y)
    if not finite.any():
        return None, None
    position = int(np.argmin(np.where(finite, y, np.inf)))
    return int(index[position]), float(y[position])


def _findings(
    curves: Curves, train: _Curve | None, val: _Curve | None, diagnosis: Diagnosis
) -> list[Finding]:
    notes: list[Finding] = []
    if val is None:
        notes.append(_no_validation())

    nonfinite = _nonfinite(curves)
    if nonfinite is not None:
        return [nonfinite, *notes]

    monitor = val if val is not None else train
    assert monitor is not None
    reference = train if train is not None else val
    assert reference is not None
    if len(monitor.y) < MIN_EPOCHS:
        return _too_short(reference, monitor, notes)

    if np.ptp(reference.y) == 0 and (val is None or np.ptp(val.y) == 0):
        return [_constant(reference), *notes]

    diverging = _diverging(reference)
    if diverging is not None:
        return [diverging, *notes]

    problems: list[Finding] = []
    for curve in (train, val):
        if curve is not None:
            swing = _oscillation(curve)
            if swing is not None:
                problems.append(_oscillating(curve, *swing, other=val if curve is train else train))
    overfit = _overfitting(train, val, diagnosis) if val is not None and train is not None else None
    if overfit is not None:
        problems.append(overfit)
    else:
        trend = _trend(monitor)
        # With validation, both curves must still be falling: one noisy curve alone can fake a trend.
        other = _trend(train) if train is not None and monitor is not train else trend
        if _still_falling(trend) and _still_falling(other):
            assert trend is not None
            problems.append(_not_converged(monitor, trend))
        elif reference.end >= UNDERFIT_KEEP * reference.start and reference.start > 0:
            problems.append(_underfitting(reference, val if reference is train else None))
        else:
            plateau = _plateau(monitor, curves)
            if plateau is not None:
                problems.append(plateau)
    if not problems:
        problems.append(_healthy(train, val, diagnosis, curves))
    return [*problems, *notes]


# ---------------------------------------------------------------------------------------------- rules


def _nonfinite(curves: Curves) -> Finding | None:
    first: tuple[int, str, float] | None = None
    for key in ("train_loss", "val_loss"):
        for i, value in enumerate(curves.columns.get(key, [])):
            if value is not None and not math.isfinite(value):
                if first is None or i < first[0]:
                    first = (i, key, value)
                break
    if first is None:
        return None
    i, key, value = first
    column = curves.columns[key]
    before = [(j, v) for j, v in enumerate(column[:i]) if v is not None]
    last = (
        f"; the last finite value was {_fmt(before[-1][1])} at epoch {_epoch_text(curves.epochs[before[-1][0]])}"
        if before
        else ", at the very first epoch"
    )
    return Finding(
        "GL307",
        "diverging",
        "error",
        f"{key} became {value} at epoch {_epoch_text(curves.epochs[i])}{last}.",
        "Reduce the learning rate by 10x (e.g. 1e-3 -> 1e-4); clip gradients (clip_grad_norm=1.0); check the "
        "inputs and targets for NaN/Inf and unscaled features; use a stable loss (bce_with_logits, not sigmoid "
        "+ BCE). The weights from the best epoch (best.pt) are unaffected.",
    )


def _too_short(reference: _Curve, monitor: _Curve, notes: list[Finding]) -> list[Finding]:
    count = len(monitor.y)
    if len(reference.y) >= 2 and reference.y[-1] > reference.y[0] * (1 + DIVERGE_RISE) and reference.y[0] > 0:
        return [_diverging_finding(reference, reference.y[0], reference.x[0]), *notes]
    values = ", ".join(f"{_fmt(v)} (epoch {_epoch_text(e)})" for e, v in zip(monitor.x, monitor.y))
    return [
        Finding(
            "GL308",
            "not converged",
            "info",
            f"only {count} epoch{'s' if count != 1 else ''} of {monitor.name}: {values}; a curve needs at least "
            f"{MIN_EPOCHS} points to show a trend.",
            "Train for more epochs (at least 10) so the learning curve can be read; then run the diagnosis again.",
        ),
        *notes,
    ]


def _constant(curve: _Curve) -> Finding:
    value = curve.start
    if value == 0:
        return Finding(
            "GL300",
            "healthy",
            "info",
            f"{curve.name} is exactly 0 at every epoch ({len(curve.y)} epochs).",
            "Nothing left to learn. If that is unexpected, check the loss compares predictions with the targets "
            "(not the targets with themselves) and that the targets are not all equal.",
        )
    return Finding(
        "GL302",
        "underfitting",
        "warning",
        f"{curve.name} stayed at {_fmt(value)} for all {len(curve.y)} epochs "
        f"({_epoch_text(curve.x[0])}-{_epoch_text(curve.x[-1])}): nothing is being learned.",
        "Check that the optimizer holds the model's parameters, that they require grad, that the LR is not 0 "
        "and that zero_grad/backward/step all run; then raise the LR by 3x if the loss creeps.",
    )


def _diverging(train: _Curve) -> Finding | None:
    best = float(np.min(train.smooth))
    best_epoch = float(train.x[int(np.argmin(train.smooth))])
    rise = train.end - best
    guard = NOISE_Z * math.sqrt(2) * train.noise_of_smooth
    if rise > max(DIVERGE_RISE * train.scale(best), guard):
        return _diverging_finding(train, best, best_epoch)
    return None


def _diverging_finding(train: _Curve, best: float, best_epoch: float) -> Finding:
    rise = (train.end - best) / train.scale(best)
    since = "its first epoch" if best_epoch == train.x[0] else f"epoch {_epoch_text(best_epoch)}"
    return Finding(
        "GL304",
        "diverging",
        "error",
        f"{train.name} is rising: lowest {_fmt(best)} at {since}, then {train.end_text()} "
        f"({_percent(rise)} above its best).",
        "Reduce the learning rate by 10x (e.g. 1e-3 -> 1e-4); add gradient clipping (clip_grad_norm=1.0); "
        "check for unscaled features or outliers in the data.",
    )


def _oscillating(curve: _Curve, swing: float, changes: int, points: int, other: _Curve | None) -> Finding:
    steady = other is not None and _oscillation(other) is None
    where = (
        f"; {other.name} is steady, so the validation set may be small or unrepresentative"
        if steady and curve.name == "val_loss"
        else ""
    )
    return Finding(
        "GL305",
        "oscillating",
        "warning",
        f"{curve.name} swings about +/-{swing:.0%} around its trend over epochs "
        f"{_epoch_text(curve.x[-points])}-{_epoch_text(curve.x[-1])}, changing direction {changes} times in "
        f"{points} epochs{where}.",
        "Reduce the learning rate by 10x (lesson 004: 'loss oscillates wildly -> reduce LR by 10x'); a larger "
        "batch or gradient clipping (clip_grad_norm=1.0) also steadies it.",
    )


def _overfitting(train: _Curve, val: _Curve, diagnosis: Diagnosis) -> Finding | None:
    best_smooth = float(np.min(val.smooth))
    best_x = float(val.x[int(np.argmin(val.smooth))])
    rise = val.end - best_smooth
    guard = NOISE_Z * math.sqrt(2) * val.noise_of_smooth
    train_at_best, train_end = train.at(best_x), train.end
    train_rose = train_end - train_at_best > max(OVERFIT_RISE * train.scale(train_at_best), guard)
    rising = rise >= max(OVERFIT_RISE * val.scale(best_smooth), guard) and not train_rose
    memorising = (
        train.start > 0
        and val.start > 0
        and train_end <= MEMORISE_TRAIN_KEEP * train.start
        and val.end >= MEMORISE_VAL_KEEP * val.start
    )
    if not (rising or memorising):
        return None
    best = _epoch_text(diagnosis.best_epoch) if diagnosis.best_epoch is not None else _epoch_text(best_x)
    best_value = diagnosis.best_value if diagnosis.best_value is not None else best_smooth
    gap_best, gap_end = _ratio(val.at(best_x), train_at_best), _ratio(val.end, train_end)
    gap = f"; val/train grew from {gap_best:.3g}x to {gap_end:.3g}x" if gap_end > gap_best > 0 else ""
    if rising:
        evidence = (
            f"val_loss was lowest at epoch {best} ({_fmt(best_value)}) and rose {_percent(rise / val.scale(best_smooth))} "
            f"to {val.end_text()}, while train_loss kept falling ({_fmt(train_at_best)} -> {_fmt(train_end)}){gap}."
        )
    else:
        evidence = (
            f"train_loss fell from {_fmt(train.start)} at epoch {_epoch_text(train.x[0])} to {train.end_text()} "
            f"but val_loss only from {_fmt(val.start)} to {_fmt(val.end)} (best {_fmt(best_value)} at epoch {best}): "
            f"the model memorises the training set{gap}."
        )
    stopped = diagnosis.stop_reason and "early" in diagnosis.stop_reason.lower()
    keep = (
        f"Early stopping already ended the run; use the epoch-{best} weights (best.pt)."
        if stopped
        else f"Keep the weights from epoch {best} (best.pt) and stop there next time: "
        "gl.EarlyStopping(patience=10, restore_best=True)."
    )
    return Finding(
        "GL301",
        "overfitting",
        "warning",
        evidence,
        f"{keep} To generalise better, regularise: weight_decay (e.g. 1e-4), dropout, more training data, or a "
        "smaller model.",
    )


def _not_converged(curve: _Curve, trend: _Trend) -> Finding:
    outlook = (
        "and shows no sign of slowing down"
        if math.isinf(trend.remaining)
        else f"and at its current pace would fall about {_percent(min(trend.remaining, 10.0))} more"
    )
    return Finding(
        "GL303",
        "not converged",
        "warning",
        f"{curve.name} is still falling at the end: {_fmt(curve.at(trend.tail_start))} at epoch "
        f"{_epoch_text(trend.tail_start)} -> {_fmt(curve.end)} at epoch {_epoch_text(curve.x[-1])} "
        f"({_percent(trend.tail_drop)} lower, {_percent(trend.per_10)} per 10 epochs at the end) {outlook}.",
        "Train for more epochs, or increase the learning rate by 3x (lesson 004: 'loss improves but very slowly "
        "-> increase LR by 3x'); standardising the inputs or switching to Adam also speeds it up.",
    )


def _underfitting(train: _Curve, val: _Curve | None) -> Finding:
    kept = train.end / train.start
    also = f"; val_loss {_fmt(val.start)} -> {_fmt(val.end)}" if val is not None else ""
    return Finding(
        "GL302",
        "underfitting",
        "warning",
        f"{train.name} barely moved and has levelled off high: {_fmt(train.start)} at epoch "
        f"{_epoch_text(train.x[0])} -> {train.end_text()}, still {kept:.0%} of where it started{also}.",
        "The model cannot fit even the training data: increase the LR by 3x if it is creeping down, use a "
        "bigger model (wider or deeper), train longer, add more informative features, or reduce regularisation "
        "(weight_decay, dropout).",
    )


def _plateau(curve: _Curve, curves: Curves) -> Finding | None:
    x = curve.x
    window = np.nonzero(x >= x[0] + (1 - PLATEAU_FRACTION) * (x[-1] - x[0]))[0]
    if len(window) < 2 or window[0] == 0:
        return None
    xw, yw = x[window], curve.y[window]
    slope, _ = _fit(xw, yw)
    spread = math.sqrt(float(np.sum((xw - xw.mean()) ** 2))) or 1.0
    best = float(np.min(curve.smooth))
    drop = -slope * (xw[-1] - xw[0]) / curve.scale(curve.end)
    # Flat = the whole last half gained under 1%, or gained nothing the noise could not explain.
    if drop >= PLATEAU_TOLERANCE and -slope > IMPROVEMENT_Z * curve.noise / spread:
        return None
    tolerance = max(PLATEAU_TOLERANCE * curve.scale(best), NOISE_Z * curve.noise_of_smooth)
    stall = min(int(np.argmax(curve.smooth <= best + tolerance)), int(window[0]))
    flat = (x[-1] - x[stall]) / (x[-1] - x[0])
    lrs = [v for v in curves.columns.get("lr", []) if v is not None and math.isfinite(v)]
    if lrs and lrs[0] > 0 and lrs[-1] < 0.5 * lrs[0]:
        advice = (
            f"The LR already decayed ({_fmt(lrs[0])} -> {_fmt(lrs[-1])}), so the model is likely at its capacity: "
            "stop at the plateau with gl.EarlyStopping to save the epochs, or try a larger model or better features."
        )
    else:
        advice = (
            "Add a schedule that lowers the LR (lesson 004: 'loss plateaus -> add cosine annealing or step "
            "decay'): scheduler='cosine', 'step' or 'plateau'; or stop at the plateau with gl.EarlyStopping."
        )
    return Finding(
        "GL306",
        "plateau",
        "warning",
        f"{curve.name} stopped improving at about epoch {_epoch_text(x[stall])} "
        f"({_fmt(curve.smooth[stall])}): over the last {flat:.0%} of the run, to epoch {_epoch_text(x[-1])}, "
        f"it changed by {_percent(-max(drop, -1.0))} (best {_fmt(best)}).",
        advice,
    )


def _healthy(train: _Curve | None, val: _Curve | None, diagnosis: Diagnosis, curves: Curves) -> Finding:
    parts = []
    for curve in (train, val):
        if curve is not None:
            parts.append(f"{curve.name} {_fmt(curve.start)} -> {_fmt(curve.end)}")
    gap = ""
    if train is not None and val is not None and train.end > 0:
        gap = f"; val/train {_ratio(val.end, train.end):.2f}x at the end"
    best = f"; best epoch {_epoch_text(diagnosis.best_epoch)}" if diagnosis.best_epoch is not None else ""
    return Finding(
        "GL300",
        "healthy",
        "info",
        f"the losses fell and levelled off together ({', '.join(parts)}){gap}{best}.",
        "Nothing to fix. Use the best epoch's weights (best.pt)"
        + ("." if _lr_changed(curves) else "; cosine annealing on top is usually a free improvement "
           "(scheduler='cosine')."),
    )


def _lr_changed(curves: Curves) -> bool:
    """A schedule is already at work when the recorded learning rate moved."""
    lrs = [v for v in curves.columns.get("lr", []) if v is not None and math.isfinite(v)]
    return len(set(lrs)) > 1


def _no_validation() -> Finding:
    return Finding(
        "GL309",
        "no validation",
        "info",
        "there is no val_loss, so overfitting cannot be seen; the diagnosis reads train_loss only.",
        "Hold out a validation set (e.g. the last 20% of the data) and pass val=(inputs, targets) to gl.fit.",
    )


# ---------------------------------------------------------------------------------------------- formatting


def _fmt(value: float) -> str:
    return f"{float(value):.4g}"


def _percent(value: float) -> str:
    return f"{100 * value:.2g}%" if abs(value) < 0.1 else f"{100 * value:.0f}%"


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _epoch_text(epoch: float) -> str:
    return f"{float(epoch):g}"


def _as_int(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _number(value: Any, key: str, index: int) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"epoch record {index}: {key}={value!r} is not a number") from None


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _json_number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
