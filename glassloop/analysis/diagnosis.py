"""Read learning curves: a `History` (or a list of epoch dicts) -> a labelled `Diagnosis` with evidence and advice.

Codes are stable (documented in docs/diagnosis.md):

    GL300 healthy        GL304 diverging        GL308 too few epochs to judge (info)
    GL301 overfitting    GL305 oscillating      GL309 no validation data (info)
    GL302 underfitting   GL306 plateau
    GL303 not converged  GL307 non-finite loss or a non-finite stop (label: diverging)

The pieces: `glassloop.analysis.curves` reads the records (and history.csv), `glassloop.analysis.measures` measures
a curve (thresholds at its top), `glassloop.analysis.findings` holds the rules; this module orders them and
builds the verdict. Every epoch a `Diagnosis` shows (text, `to_dict()`, `tags()`) is 1-based.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from glassloop.analysis import findings as rules
from glassloop.analysis.curves import Curves, epoch_text, load_history, read_curves
from glassloop.analysis.findings import Context, Finding
from glassloop.analysis.measures import MIN_EPOCHS, UNDERFIT_KEEP, Curve, fmt, measure_trend, still_falling

__all__ = ["CODES", "LABELS", "Curves", "Diagnosis", "Finding", "diagnose", "load_history", "read_curves"]

LABELS = ("healthy", "overfitting", "underfitting", "not converged", "diverging", "oscillating", "plateau")
CODES: dict[str, str] = {
    "GL300": "healthy",
    "GL301": "overfitting",
    "GL302": "underfitting",
    "GL303": "not converged",
    "GL304": "diverging",
    "GL305": "oscillating",
    "GL306": "plateau",
    "GL307": "diverging",  # non-finite loss (or the non-finite guard stopped the run): divergence at its extreme
    "GL308": "too few epochs",
    "GL309": "no validation",
}
TITLES = {"not converged": "not converged (still improving)"}


@dataclass
class Diagnosis:
    """The verdict on a run. `label` is one of `LABELS`; `findings[0]` is the finding that decided it.

    `best_epoch` uses the same numbering as the evidence text: 1-based for a `History` and for code records
    (whose epochs count from 0), the numbers as given for other epoch dicts, and 1..n for dicts without `epoch`.
    `best_index` is the position of that epoch in the records; `best_value` is the recorded (never smoothed) value.
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
        """JSON-safe (non-finite numbers become None): for `--format json` and MLflow. Epochs are 1-based."""
        return {
            "label": self.label,
            "code": self.code,
            "best_epoch": self.best_epoch,
            "best_value": _json_number(self.best_value),
            "monitor": self.monitor,
            "epochs": self.epochs,
            "epoch_numbering": "1-based",
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
            tags["glassloop.best_epoch"] = epoch_text(self.best_epoch)
        return tags

    def __str__(self) -> str:
        head = f"diagnosis: {self.title} ({self.code})"
        if self.best_epoch is not None and self.best_value is not None:
            head += f"; best epoch {epoch_text(self.best_epoch)} ({self.monitor} {fmt(self.best_value)})"
        lines = [head]
        for finding in self.findings:
            lines.append(f"  {finding.code} {finding.label} [{finding.severity}]")
            lines.append(f"    evidence: {finding.evidence}")
            lines.append(f"    advice:   {finding.advice}")
        return "\n".join(lines)


def diagnose(history_or_records: Any, *, best_checkpoint: bool | None = None) -> Diagnosis:
    """Read the learning curves and say what they show, with the evidence and lesson 004's advice.

    Accepts a `History`, a list of epoch dicts (`train_loss`, optional `val_loss` and `epoch`), or a dict of
    per-epoch lists. Sparse tables (epochs 1, 10, 20, ...) work: trends use the epoch numbers, not positions.
    `best_checkpoint` says whether the run has a best.pt (`glassloop diagnose DIR` looks); advice names best.pt
    only when it is True. Raises `DataError` when there is nothing to read.
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
    lrs = [v for v in curves.columns.get("lr", []) if v is not None and math.isfinite(v)]
    context = Context(diagnosis.best_epoch, best_value, monitor.name, curves.stop_reason, best_checkpoint,
                      lrs[-1] if lrs else None)  # fmt: skip
    diagnosis.findings = _findings(curves, train, val, context)
    diagnosis.label = diagnosis.findings[0].label
    return diagnosis


def _curve(curves: Curves, key: str) -> Curve | None:
    index, x, y = curves.series(key)
    return Curve(key, index, x, y) if len(y) else None


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


def _findings(curves: Curves, train: Curve | None, val: Curve | None, context: Context) -> list[Finding]:
    """The checks in their documented order (docs/diagnosis.md, "Order of the checks")."""
    notes = [rules.no_validation()] if val is None else []
    blown = rules.nonfinite(curves, context) or rules.blowup((train, val), context)
    if blown is not None:
        return [blown, *notes]
    monitor = val if val is not None else train
    reference = train if train is not None else val
    assert monitor is not None and reference is not None
    if len(monitor.y) < MIN_EPOCHS:
        return [rules.too_short(reference, monitor, context), *notes]
    if np.ptp(reference.y) == 0 and (val is None or np.ptp(val.y) == 0):
        return [rules.constant(reference), *notes]
    diverging = rules.diverging(reference, context)
    if diverging is not None:
        return [diverging, *notes]

    problems = [
        finding
        for curve, other in ((train, val), (val, train))
        if curve is not None and (finding := rules.oscillating(curve, other)) is not None
    ]
    overfit = rules.overfitting(train, val, context) if val is not None and train is not None else None
    if overfit is not None:
        problems.append(overfit)
    else:
        trend = measure_trend(monitor)
        # With validation, both curves must still be falling: one noisy curve alone can fake a trend.
        other = measure_trend(train) if train is not None and monitor is not train else trend
        if still_falling(trend) and still_falling(other):
            assert trend is not None
            problems.append(rules.not_converged(monitor, trend))
        elif reference.end >= UNDERFIT_KEEP * reference.start and reference.start > 0:
            problems.append(rules.underfitting(reference, val if reference is train else None))
        else:
            plateau = rules.plateau(monitor, curves)
            if plateau is not None:
                problems.append(plateau)
    if not problems:
        problems.append(rules.healthy(train, val, context, curves))
    return [*problems, *notes]


def _json_number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
