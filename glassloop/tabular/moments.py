"""One-pass statistics over row groups: running moments (Chan's merge) and per-column extremes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassloop.tabular.transform import Scaler, overflow_error


# ----------------------------------------------------------------------------------------------- statistics
@dataclass
class RunningMoments:
    """Per-column count, mean and sum of squared deviations, merged chunk by chunk (Chan et al.'s parallel
    algorithm): numerically stable, unlike sum/sum-of-squares, and O(columns) memory. NaN cells are not counted
    (each column keeps its own count), so --impute can merge its fill value in afterwards."""

    count: np.ndarray | None = None
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if len(values) == 0:
            return
        seen = ~np.isnan(values)
        n_b = seen.sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            mean_b = np.where(n_b > 0, np.where(seen, values, 0.0).sum(axis=0) / np.maximum(n_b, 1), 0.0)
            m2_b = np.where(seen, (values - mean_b) ** 2, 0.0).sum(axis=0)
        self.merge(n_b, mean_b, m2_b)

    def merge(self, n_b: np.ndarray, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        if self.count is None:
            self.count, self.mean, self.m2 = n_b.copy(), mean_b.copy(), m2_b.copy()
            return
        total = self.count + n_b
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            share = np.where(total > 0, n_b / np.maximum(total, 1), 0.0)
            delta = mean_b - self.mean
            self.mean = self.mean + delta * share
            self.m2 = self.m2 + m2_b + delta**2 * self.count * share
        self.count = total

    def scaler(self, columns: list[str] | None = None) -> Scaler:
        """Same rule as `Scaler.fit`: population std, and 1 for a column constant on the training rows."""
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            std = np.sqrt(self.m2 / np.maximum(self.count, 1))
        return Scaler.from_moments(self.mean, std, columns)


class Extremes:
    """Per-column min and max of the training rows and the rows holding them: scaling is monotone, so checking
    the scaled extremes checks every scaled value, with no second pass."""

    def __init__(self) -> None:
        self.low: np.ndarray | None = None
        self.high: np.ndarray | None = None
        self.low_rows: np.ndarray | None = None
        self.high_rows: np.ndarray | None = None

    def update(self, values: np.ndarray, positions: np.ndarray) -> None:
        if not len(values):
            return
        filled_low = np.where(np.isnan(values), np.inf, values)
        filled_high = np.where(np.isnan(values), -np.inf, values)
        low, high = filled_low.min(axis=0), filled_high.max(axis=0)
        low_rows, high_rows = positions[filled_low.argmin(axis=0)], positions[filled_high.argmax(axis=0)]
        if self.low is None:
            self.low, self.high, self.low_rows, self.high_rows = low, high, low_rows, high_rows
            return
        self.low_rows = np.where(low < self.low, low_rows, self.low_rows)
        self.high_rows = np.where(high > self.high, high_rows, self.high_rows)
        self.low, self.high = np.minimum(self.low, low), np.maximum(self.high, high)

    def check(self, scaler: Scaler, columns: list[str], source: str) -> None:
        if self.low is None:
            return
        seen = np.isfinite(self.low)
        bounds = np.vstack([np.where(seen, self.low, 0.0), np.where(seen, self.high, 0.0)])
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = scaler.transform(bounds).astype(np.float32)
        bad = ~np.isfinite(scaled)
        if bad.any():
            column = int(np.flatnonzero(bad.any(axis=0))[0])
            row = int(self.low_rows[column] if bad[0, column] else self.high_rows[column])
            raise overflow_error([columns[i] for i in np.flatnonzero(bad.any(axis=0))], source, row,
                                 "after scaling and the float32 cast")
