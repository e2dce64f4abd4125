"""The diagnosis rules: each reads measured curves and returns a `Finding` (code, evidence, advice) or None.

The advice is lesson 004's rule of thumb: diverges -> LR / 10 and clipping; improves slowly -> LR x 3; plateaus
-> cosine or step decay; overfits -> keep the best epoch (early stopping) or regularise. Values called "best" or
"lowest" are recorded values; a smoothed value is called "smoothed". Advice names best.pt only when the caller
knows it exists (`Context.best_checkpoint`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from glassloop.analysis.curves import Curves, epoch_text
from glassloop.analysis.measures import (
    DIVERGE_RISE,
    IMPROVEMENT_Z,
    MEMORISE_TRAIN_KEEP,
    MEMORISE_VAL_KEEP,
    MIN_EPOCHS,
    NOISE_Z,
    OVERFIT_RISE,
    PLATEAU_FRACTION,
    PLATEAU_TOLERANCE,
    Curve,
    Trend,
    fit_line,
    fmt,
    measure_blowup,
    measure_oscillation,
    percent,
    ratio,
)


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


@dataclass(frozen=True)
class Context:
    """What the rules need beyond the curves: the recorded best (epoch as shown), why the run ended, and whether
    a best.pt exists (True/False when the caller knows, None when it does not)."""

    best_epoch: int | float | None
    best_value: float | None
    monitor: str
    stop_reason: str | None
    best_checkpoint: bool | None
    last_lr: float | None

    def weights(self, epoch: str) -> str:
        """How to name the weights of `epoch` in advice: with best.pt only when it exists."""
        return f"the weights from epoch {epoch}" + (" (best.pt)" if self.best_checkpoint else "")


# ---------------------------------------------------------------------------------------------- divergence


def divergence_advice(context: Context) -> str:
    """Lesson 004: 'loss diverges -> reduce LR by 10x'; clipping is the safety net against exploding steps."""
    lr = context.last_lr
    cut = f"{fmt(lr)} -> {fmt(lr / 10)}" if lr is not None and lr > 0 else "e.g. 1e-3 -> 1e-4"
    advice = (
        f"Cut the learning rate 10x ({cut}) and add gradient clipping (clip_grad_norm=1.0); check the inputs and "
        "targets for NaN/Inf and unscaled features; use a stable loss (bce_with_logits, not sigmoid + BCE)."
    )
    if context.best_checkpoint is False:
        return advice + " This run has no best.pt: no epoch improved with finite values, so train it again."
    if context.best_checkpoint and context.best_epoch is not None:
        best = epoch_text(context.best_epoch)
        return advice + f" best.pt holds epoch {best} ({context.monitor} {fmt(context.best_value or math.nan)})."
    return advice


def nonfinite(curves: Curves, context: Context) -> Finding | None:
    """GL307: a NaN/Inf loss in the records, or a run the non-finite guard stopped (History.stop_reason)."""
    first: tuple[int, str, float] | None = None
    for key in ("train_loss", "val_loss"):
        for i, value in enumerate(curves.columns.get(key, [])):
            if value is not None and not math.isfinite(value):
                if first is None or i < first[0]:
                    first = (i, key, value)
                break
    stopped = (curves.stop_reason or "").startswith("non-finite")
    if first is None and not stopped:
        return None
    if first is not None:
        i, key, value = first
        before = [(j, v) for j, v in enumerate(curves.columns[key][:i]) if v is not None]
        last = (
            f"; the last finite value was {fmt(before[-1][1])} at epoch {epoch_text(curves.epochs[before[-1][0]])}"
            if before
            else ", at the very first epoch"
        )
        evidence = f"{key} became {value} at epoch {epoch_text(curves.epochs[i])}{last}."
    else:
        reason = (curves.stop_reason or "").split(";")[0]
        evidence = f"the run stopped on a {reason} before its update{_path_text(curves)}."
    return Finding("GL307", "diverging", "error", evidence, divergence_advice(context))


def _path_text(curves: Curves) -> str:
    """'; train_loss went from A at epoch 1 to B at epoch 3 (...x)' for the evidence of a stopped run."""
    key = "train_loss" if any(v is not None for v in curves.columns.get("train_loss", [])) else "val_loss"
    _, x, y = curves.series(key)
    if len(y) == 0:
        return ""
    if len(y) == 1:
        return f"; its only recorded epoch ({epoch_text(x[0])}) had {key} {fmt(y[0])}"
    growth = f", {fmt(y[-1] / y[0])}x" if y[0] > 0 and y[-1] > y[0] else ""
    return f"; {key} went from {fmt(y[0])} at epoch {epoch_text(x[0])} to {fmt(y[-1])} at epoch {epoch_text(x[-1])}{growth}"


def blowup(curves: tuple[Curve | None, ...], context: Context) -> Finding | None:
    """GL304: a loss that grew by orders of magnitude (>= BLOWUP_FACTOR over its lowest earlier value)."""
    for curve in curves:
        found = measure_blowup(curve) if curve is not None else None
        if found is None:
            continue
        low, high, factor = found
        ended = (
            f"; it ended at {fmt(curve.y[-1])} at epoch {epoch_text(curve.x[-1])}" if high != len(curve.y) - 1 else ""
        )
        return Finding(
            "GL304",
            "diverging",
            "error",
            f"{curve.name} blew up: it grew {fmt(factor)}x ({math.log10(factor):.1f} orders of magnitude) from "
            f"{fmt(curve.y[low])} at epoch {epoch_text(curve.x[low])} to {fmt(curve.y[high])} at epoch "
            f"{epoch_text(curve.x[high])}{ended}.",
            divergence_advice(context),
        )
    return None


def diverging(train: Curve, context: Context) -> Finding | None:
    """GL304: the (smoothed) train loss ends >= DIVERGE_RISE above its lowest level: climbing, not descending."""
    lowest = float(np.min(train.smooth))
    rise = train.end - lowest
    guard = NOISE_Z * math.sqrt(2) * train.noise_of_smooth
    if rise > max(DIVERGE_RISE * train.scale(lowest), guard):
        return diverging_finding(train, context)
    return None


def diverging_finding(train: Curve, context: Context) -> Finding:
    best, best_epoch = train.lowest()
    rise = (train.end - best) / train.scale(best)
    since = "its first epoch" if best_epoch == train.x[0] else f"epoch {epoch_text(best_epoch)}"
    return Finding(
        "GL304",
        "diverging",
        "error",
        f"{train.name} is rising: lowest {fmt(best)} at {since}, then {train.end_text()} "
        f"({percent(rise)} above its lowest).",
        divergence_advice(context),
    )


# ---------------------------------------------------------------------------------------------- the rest


def too_short(reference: Curve, monitor: Curve, context: Context) -> Finding:
    if len(reference.y) >= 2 and reference.y[-1] > reference.y[0] * (1 + DIVERGE_RISE) and reference.y[0] > 0:
        return diverging_finding(reference, context)
    count = len(monitor.y)
    values = ", ".join(f"{fmt(v)} (epoch {epoch_text(e)})" for e, v in zip(monitor.x, monitor.y))
    return Finding(
        "GL308",
        "not converged",
        "info",
        f"only {count} epoch{'s' if count != 1 else ''} of {monitor.name}: {values}; a curve needs at least "
        f"{MIN_EPOCHS} points to show a trend.",
        "Train for more epochs (at least 10) so the learning curve can be read; then run the diagnosis again.",
    )


def constant(curve: Curve) -> Finding:
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
        f"{curve.name} stayed at {fmt(value)} for all {len(curve.y)} epochs "
        f"({epoch_text(curve.x[0])}-{epoch_text(curve.x[-1])}): nothing is being learned.",
        "Check that the optimizer holds the model's parameters, that they require grad, that the LR is not 0 "
        "and that zero_grad/backward/step all run; then raise the LR by 3x if the loss creeps.",
    )


def oscillating(curve: Curve, other: Curve | None) -> Finding | None:
    swing = measure_oscillation(curve)
    if swing is None:
        return None
    relative, changes, points = swing
    steady = other is not None and measure_oscillation(other) is None
    where = (
        f"; {other.name} is steady, so the validation set may be small or unrepresentative"
        if steady and other is not None and curve.name == "val_loss"
        else ""
    )
    return Finding(
        "GL305",
        "oscillating",
        "warning",
        f"{curve.name} swings about +/-{relative:.0%} around its trend over epochs "
        f"{epoch_text(curve.x[-points])}-{epoch_text(curve.x[-1])}, changing direction {changes} times in "
        f"{points} epochs{where}.",
        "Reduce the learning rate by 10x (lesson 004: 'loss oscillates wildly -> reduce LR by 10x'); a larger "
        "batch or gradient clipping (clip_grad_norm=1.0) also steadies it.",
    )


def overfitting(train: Curve, val: Curve, context: Context) -> Finding | None:
    best_smooth = float(np.min(val.smooth))
    best_x = float(val.x[int(np.argmin(val.smooth))])
    guard = NOISE_Z * math.sqrt(2) * val.noise_of_smooth
    train_at_best, train_end = train.at(best_x), train.end
    train_rose = train_end - train_at_best > max(OVERFIT_RISE * train.scale(train_at_best), guard)
    rising = val.end - best_smooth >= max(OVERFIT_RISE * val.scale(best_smooth), guard) and not train_rose
    memorising = (
        train.start > 0
        and val.start > 0
        and train_end <= MEMORISE_TRAIN_KEEP * train.start
        and val.end >= MEMORISE_VAL_KEEP * val.start
    )
    if not (rising or memorising):
        return None
    recorded, recorded_epoch = val.lowest()
    best = epoch_text(context.best_epoch if context.best_epoch is not None else recorded_epoch)
    best_value = context.best_value if context.best_value is not None else recorded
    gap_best, gap_end = ratio(val.at(best_x), train_at_best), ratio(val.end, train_end)
    gap = f"; val/train grew from {gap_best:.3g}x to {gap_end:.3g}x" if gap_end > gap_best > 0 else ""
    if rising:
        evidence = (
            f"val_loss was lowest at epoch {best} ({fmt(best_value)}) and rose "
            f"{percent((val.end - best_value) / val.scale(best_value))} to {val.end_text()}, while train_loss kept "
            f"falling ({fmt(train_at_best)} -> {fmt(train_end)}){gap}."
        )
    else:
        evidence = (
            f"train_loss fell from {fmt(train.start)} at epoch {epoch_text(train.x[0])} to {train.end_text()} "
            f"but val_loss only from {fmt(val.start)} to {fmt(val.end)} (best {fmt(best_value)} at epoch {best}): "
            f"the model memorises the training set{gap}."
        )
    stopped = context.stop_reason and "early" in context.stop_reason.lower()
    keep = (
        f"Early stopping already ended the run; use {context.weights(best)}."
        if stopped
        else f"Keep {context.weights(best)} and stop there next time: "
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


def not_converged(curve: Curve, trend: Trend) -> Finding:
    outlook = (
        "and shows no sign of slowing down"
        if math.isinf(trend.remaining)
        else f"and at its current pace would fall about {percent(min(trend.remaining, 10.0))} more"
    )
    return Finding(
        "GL303",
        "not converged",
        "warning",
        f"{curve.name} is still falling at the end: {curve.level_text(trend.tail_start)} at epoch "
        f"{epoch_text(trend.tail_start)} -> {curve.end_text()} "
        f"({percent(trend.tail_drop)} lower, {percent(trend.per_10)} per 10 epochs at the end) {outlook}.",
        "Train for more epochs, or increase the learning rate by 3x (lesson 004: 'loss improves but very slowly "
        "-> increase LR by 3x'); standardising the inputs or switching to Adam also speeds it up.",
    )


def underfitting(train: Curve, val: Curve | None) -> Finding:
    kept = train.end / train.start
    also = f"; val_loss {fmt(val.start)} -> {fmt(val.end)}" if val is not None else ""
    return Finding(
        "GL302",
        "underfitting",
        "warning",
        f"{train.name} barely moved and has levelled off high: {fmt(train.start)} at epoch "
        f"{epoch_text(train.x[0])} -> {train.end_text()}, still {kept:.0%} of where it started{also}.",
        "The model cannot fit even the training data: increase the LR by 3x if it is creeping down, use a "
        "bigger model (wider or deeper), train longer, add more informative features, or reduce regularisation "
        "(weight_decay, dropout).",
    )


def plateau(curve: Curve, curves: Curves) -> Finding | None:
    x = curve.x
    window = np.nonzero(x >= x[0] + (1 - PLATEAU_FRACTION) * (x[-1] - x[0]))[0]
    if len(window) < 2 or window[0] == 0:
        return None
    xw, yw = x[window], curve.y[window]
    slope, _ = fit_line(xw, yw)
    spread = math.sqrt(float(np.sum((xw - xw.mean()) ** 2))) or 1.0
    level = float(np.min(curve.smooth))
    drop = -slope * (xw[-1] - xw[0]) / curve.scale(curve.end)
    # Flat = the whole last half gained under 1%, or gained nothing the noise could not explain.
    if drop >= PLATEAU_TOLERANCE and -slope > IMPROVEMENT_Z * curve.noise / spread:
        return None
    tolerance = max(PLATEAU_TOLERANCE * curve.scale(level), NOISE_Z * curve.noise_of_smooth)
    stall = min(int(np.argmax(curve.smooth <= level + tolerance)), int(window[0]))
    flat = (x[-1] - x[stall]) / (x[-1] - x[0])
    best, best_epoch = curve.lowest()
    return Finding(
        "GL306",
        "plateau",
        "warning",
        f"{curve.name} stopped improving at about epoch {epoch_text(x[stall])} "
        f"({curve.level_text(x[stall])}): over the last {flat:.0%} of the run, to epoch {epoch_text(x[-1])}, "
        f"it changed by {percent(-max(drop, -1.0))} (best {fmt(best)} at epoch {epoch_text(best_epoch)}).",
        _plateau_advice(curves),
    )


def _plateau_advice(curves: Curves) -> str:
    lrs = _finite_lrs(curves)
    if lrs and lrs[0] > 0 and lrs[-1] < 0.5 * lrs[0]:
        return (
            f"The LR already decayed ({fmt(lrs[0])} -> {fmt(lrs[-1])}), so the model is likely at its capacity: "
            "stop at the plateau with gl.EarlyStopping to save the epochs, or try a larger model or better features."
        )
    return (
        "Add a schedule that lowers the LR (lesson 004: 'loss plateaus -> add cosine annealing or step "
        "decay'): scheduler='cosine', 'step' or 'plateau'; or stop at the plateau with gl.EarlyStopping."
    )


def healthy(train: Curve | None, val: Curve | None, context: Context, curves: Curves) -> Finding:
    parts = [f"{c.name} {fmt(c.start)} -> {fmt(c.end)}" for c in (train, val) if c is not None]
    gap = ""
    if train is not None and val is not None and train.end > 0:
        gap = f"; val/train {ratio(val.end, train.end):.2f}x at the end"
    best = f"; best epoch {epoch_text(context.best_epoch)}" if context.best_epoch is not None else ""
    keep = f"Use {context.weights(epoch_text(context.best_epoch))}" if context.best_epoch is not None else "Keep them"
    cosine = (
        "."
        if len(set(_finite_lrs(curves))) > 1  # a schedule is already at work when the recorded LR moved
        else "; cosine annealing on top is usually a free improvement (scheduler='cosine')."
    )
    return Finding(
        "GL300",
        "healthy",
        "info",
        f"the losses fell and levelled off together ({', '.join(parts)}){gap}{best}.",
        f"Nothing to fix. {keep}{cosine}",
    )


def no_validation() -> Finding:
    return Finding(
        "GL309",
        "no validation",
        "info",
        "there is no val_loss, so overfitting cannot be seen; the diagnosis reads train_loss only.",
        "Hold out a validation set (e.g. the last 20% of the data) and pass val=(inputs, targets) to gl.fit.",
    )


def _finite_lrs(curves: Curves) -> list[float]:
    return [v for v in curves.columns.get("lr", []) if v is not None and math.isfinite(v)]
