"""What every diagnosis rule measures on a loss curve: its smoothed level, noise, start, end, trend, swing.

Every threshold is scale-free (relative to the curve's own level, start or range, or to its own noise), so a
loss of 1e5 and a loss of 1e-3 with the same shape get the same diagnosis. The thresholds are documented in
docs/diagnosis.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from glassloop.analysis.curves import epoch_text

# Thresholds. All relative: to the curve's level, its start, its range, or its own noise.
DIVERGE_RISE = 0.20  # train loss ends >= 20% above its best: the optimiser is climbing, not descending
BLOWUP_FACTOR = 100.0  # a positive loss 100x (two decades) above its lowest earlier value has blown up
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


@dataclass
class Curve:
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
        slope, _ = fit_line(self.x[last], self.y[last])
        return float(np.median(self.y[last] + slope * (self.x[-1] - self.x[last])))

    def scale(self, reference: float) -> float:
        """What "relative" means for this curve: its level when losses are positive, else its range."""
        if np.all(self.y > 0) and reference > 0:
            return reference
        spread = float(np.max(self.y) - np.min(self.y))
        return spread if spread > 0 else max(abs(reference), 1.0)

    def at(self, epoch: float) -> float:
        return float(np.interp(epoch, self.x, self.smooth))

    def level_text(self, epoch: float) -> str:
        """`at(epoch)` for a message: a recorded value as is, a smoothed one called "smoothed"."""
        value = fmt(self.at(epoch))
        recorded = self.width == 1 and bool(np.any(self.x == epoch))
        return value if recorded else f"smoothed {value}"

    def lowest(self) -> tuple[float, float]:
        """The lowest recorded value and its epoch: what "best" means in a message (never a smoothed value)."""
        finite = np.where(np.isfinite(self.y), self.y, np.inf)
        position = int(np.argmin(finite))
        return float(self.y[position]), float(self.x[position])

    def end_text(self) -> str:
        if self.width == 1:
            return f"{fmt(self.y[-1])} at epoch {epoch_text(self.x[-1])}"
        return f"about {fmt(self.end)} at epoch {epoch_text(self.x[-1])} (median of the last epochs)"


@dataclass
class Trend:
    """How the end of a curve is moving: the slope over the last 40% of the run and whether it is slowing."""

    falling: bool
    remaining: float  # extrapolated further drop, relative to the current level (inf: no sign of slowing)
    tail_drop: float  # relative drop over the tail window
    tail_start: float  # epoch where the tail window starts
    per_10: float  # relative drop per 10 epochs at the end


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept (x centred for accuracy)."""
    xc = x - x.mean()
    denominator = float(np.sum(xc * xc))
    slope = float(np.sum(xc * (y - y.mean())) / denominator) if denominator > 0 else 0.0
    return slope, float(y.mean() - slope * x.mean())


def measure_trend(curve: Curve) -> Trend | None:
    x, y = curve.x, curve.y
    n = len(y)
    if n < MIN_EPOCHS:
        return None
    first, last = x[0], x[-1]
    tail = np.nonzero(x >= first + 0.6 * (last - first))[0]
    if len(tail) < 4:
        tail = np.arange(max(0, n - 4), n)  # sparse tables: the last few rows are the tail
    xt, yt = x[tail], y[tail]
    slope, _ = fit_line(xt, yt)
    spread = math.sqrt(float(np.sum((xt - xt.mean()) ** 2))) or 1.0
    speed = -slope  # positive = falling
    scale = curve.scale(curve.end)
    tail_drop = (curve.smooth[tail[0]] - curve.end) / scale
    per_10 = 10 * speed / scale
    falling = speed > NOISE_Z * curve.noise / spread and speed > 0 and tail_drop >= TAIL_MIN_DROP
    remaining = remaining_drop(xt, yt, float(last - first), curve.noise) / scale if falling else 0.0
    return Trend(falling, remaining, float(tail_drop), float(xt[0]), float(per_10))


def remaining_drop(x: np.ndarray, y: np.ndarray, span: float, noise: float) -> float:
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
    slope, intercept = fit_line(x, y)
    straight = float(np.sum((slope * x + intercept - y) ** 2))
    if tau >= taus[-1]:
        return math.inf  # straight as far as the fit can tell: no end in sight
    if straight - sse <= CURVATURE_Z**2 * noise**2:
        # The bend is within the noise, so its extrapolation is not to be trusted: say what the same number of
        # epochs again would bring at the tail's average pace instead.
        return max(-slope, 0.0) * float(x[-1] - x[0])
    return max(excess, 0.0)


def measure_blowup(curve: Curve) -> tuple[int, int, float] | None:
    """(low, high, factor): the largest growth of a positive loss over its lowest earlier value, when that is at
    least BLOWUP_FACTOR (orders of magnitude, not a bad epoch)."""
    y = curve.y
    best: tuple[int, int, float] | None = None
    low = -1
    for j, value in enumerate(y):
        if not (math.isfinite(value) and value > 0):
            continue
        if low >= 0 and value / y[low] >= BLOWUP_FACTOR and (best is None or value / y[low] > best[2]):
            best = (low, j, float(value / y[low]))
        if low < 0 or value < y[low]:
            low = j
    return best


def still_falling(trend: Trend | None) -> bool:
    return trend is not None and trend.falling and trend.remaining >= STILL_FALLING_REMAINING


def measure_oscillation(curve: Curve) -> tuple[float, int, int] | None:
    """(typical swing / level, direction changes, points) over the second half, if it swings wildly."""
    x, y = curve.x, curve.y
    tail = np.nonzero(x >= x[0] + 0.5 * (x[-1] - x[0]))[0]
    if len(tail) < 8:
        return None
    slope, intercept = fit_line(x[tail], y[tail])
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



# ---------------------------------------------------------------------------------------------- formatting


def fmt(value: float) -> str:
    """A number readable at any magnitude: 0.078, 1.44, 2.93e+35 (4 significant digits)."""
    return f"{float(value):.4g}"


def percent(value: float) -> str:
    """A relative change as a percentage, readable at any size: 26%, 0.5%, 1.2e+35%."""
    if abs(value) >= 10:
        return f"{100 * value:.3g}%"
    return f"{100 * value:.2g}%" if abs(value) < 0.1 else f"{100 * value:.0f}%"


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0
