"""What a sweep leaves: `SweepResult`, one table row and one `History` per configuration, `sweep.csv`.

Epochs follow the one convention (glassloop.core.state.shown_epoch): 0-based in Python objects (`table`,
`summary()`, the histories), 1-based in what a person or a file sees (`report()`, `to_csv()`).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glassloop.core import checkpoint
from glassloop.core.state import History, shown_epoch

EPOCH_COLUMNS = ("best_epoch", "stopped_epoch")  # 0-based in `table`, 1-based in sweep.csv


class SweepResult:
    """One row and one `History` per configuration, and the best weights of each."""

    def __init__(self, configs: list[dict[str, Any]], grid_keys: list[str], histories: list[History],
                 stopped_epoch: list[int | None], stack: Any, best: torch.Tensor, seconds: float,
                 has_val: bool) -> None:
        self.configs = configs
        self.grid_keys = grid_keys
        self.histories = histories
        self.seconds = seconds
        self.method: str = stack.method
        self.mlflow_run_id: str | None = None
        self._stack, self._best = stack, best.detach().cpu()
        monitor = "best_val_loss" if has_val else "best_train_loss"
        self.table: list[dict[str, Any]] = []
        for index, (config, history) in enumerate(zip(configs, histories)):
            last = history.records[-1] if history.records else {}
            self.table.append({
                "index": index, **config, "best_epoch": history.best_epoch, monitor: history.best_val_loss,
                "train_loss": last.get("train_loss"), "val_loss": last.get("val_loss"),
                "epochs_trained": len(history.records), "stopped_epoch": stopped_epoch[index],
            })
        self.monitor = monitor

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def best_index(self) -> int:
        """The configuration with the lowest best val loss (train loss without validation)."""
        scores = [row[self.monitor] if row[self.monitor] is not None else math.inf for row in self.table]
        return min(range(len(scores)), key=scores.__getitem__)

    @property
    def best_config(self) -> dict[str, Any]:
        return dict(self.configs[self.best_index])

    def model(self, index: int) -> nn.Module:
        """Configuration `index`'s trained model: a plain nn.Module holding its best epoch's weights."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"configuration {index} does not exist; the sweep has {len(self)} (0..{len(self) - 1})")
        return self._stack.unstack(self._best[index])

    def summary(self) -> list[dict[str, Any]]:
        """Mean ± std across seeds for every setting of the other grid keys (sample std; 0 for one seed).
        `best_epoch_mean` is 0-based, like `table` and `History.best_epoch`."""
        keys = [k for k in self.grid_keys if k != "seed"]
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in self.table:
            groups.setdefault(tuple(row[k] for k in keys), []).append(row)
        rows = []
        for setting, members in groups.items():
            summary: dict[str, Any] = dict(zip(keys, setting))
            summary["runs"] = len(members)
            for column in (self.monitor, "train_loss", "best_epoch"):
                values = [float(r[column]) for r in members if r[column] is not None and math.isfinite(r[column])]
                summary[f"{column}_mean"] = statistics.fmean(values) if values else math.nan
                summary[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            summary["stopped"] = sum(r["stopped_epoch"] is not None for r in members)
            rows.append(summary)
        return rows

    def report(self) -> str:
        """The summary as text: one line per setting, then the best configuration (epochs 1-based)."""
        name = self.monitor.replace("best_", "")
        lines = [f"sweep: {len(self)} configurations, {self.method}, {self.seconds:.2f} s"]
        for row in self.summary():
            setting = ", ".join(f"{k}={row[k]}" for k in self.grid_keys if k != "seed") or "all"
            lines.append(f"  {setting}: best {name} {row[self.monitor + '_mean']:.6g} ± "
                         f"{row[self.monitor + '_std']:.2g} over {row['runs']} run{'s' * (row['runs'] > 1)}, "
                         f"best epoch {row['best_epoch_mean'] + 1:.1f}, stopped early {row['stopped']}")
        best = self.table[self.best_index]
        value = best[self.monitor] if best[self.monitor] is not None else math.nan
        epoch = shown_epoch(best["best_epoch"])
        lines.append(f"  best: configuration {best['index']} {self.best_config} with {name} {value:.6g} at "
                     f"epoch {epoch if epoch is not None else '-'}")
        return "\n".join(lines)

    def shown_table(self) -> list[dict[str, Any]]:
        """The table as a person or a file sees it: epochs 1-based."""
        return [{key: shown_epoch(value) if key in EPOCH_COLUMNS else value for key, value in row.items()}
                for row in self.table]

    def to_csv(self, path: str | Path | None = None) -> str:
        """The table (one row per configuration, epochs 1-based) as CSV text; written atomically to `path`."""
        rows = self.shown_table()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        text = buffer.getvalue()
        if path is not None:
            checkpoint.write_file(text.encode("utf-8"), Path(path))
        return text
