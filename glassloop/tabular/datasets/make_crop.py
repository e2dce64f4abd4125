"""Generate the `crop` dataset (lesson 003): 48 harvest records, deterministic.

Four farms, two harvests a year (spring and autumn) over six years, 2019-2024. Each record has the season's
weather (rainfall, mean temperature, sun hours), the farm's inputs (fertiliser, soil moisture at sowing), the
harvest `date`, the `farm` and `season` (categorical) and the `yield_t_ha` target.

The yield carries a real, partly non-linear signal (temperature has an optimum near 21 °C, fertiliser has
diminishing returns, each farm has its own soil) plus noise, so that a small MLP has something to find and a
linear model is a fair baseline. Run `python -m glassloop.tabular.datasets.make_crop` to rewrite the shipped CSV;
the output is byte-for-byte reproducible (values are rounded before they are written).
"""

from __future__ import annotations

import csv
import io
import math
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np

COLUMNS = [
    "date", "farm", "season", "rainfall_mm", "mean_temp_c", "sun_hours", "fertiliser_kg_ha",
    "soil_moisture_pct", "yield_t_ha",
]
# farm -> (soil quality in t/ha added to the yield, harvest-day offset so farms harvest on different days)
FARMS = {"north": (-0.4, 0), "river": (0.5, 3), "hill": (-0.1, 6), "valley": (0.2, 9)}
SEASONS = {"spring": (6, 10), "autumn": (11, 2)}  # season -> (harvest month, first harvest day)
YEARS = range(2019, 2025)
SEED = 3


def generate(seed: int = SEED) -> list[dict[str, object]]:
    """The 48 records as dicts, sorted by date (one fixed seed, so always the same records)."""
    rng = np.random.default_rng(seed)
    records: list[dict[str, object]] = []
    for year in YEARS:
        for season, (month, day) in SEASONS.items():
            # Weather is shared by all farms in a season (same region), with a little local variation.
            season_rain = rng.normal(420 if season == "spring" else 330, 70)
            season_temp = rng.normal(22.5 if season == "spring" else 17.5, 2.2)
            season_sun = rng.normal(900 if season == "spring" else 620, 80)
            for farm, (soil, offset) in FARMS.items():
                rainfall = max(80.0, season_rain + rng.normal(0, 25))
                temp = season_temp + rng.normal(0, 0.6)
                sun = max(300.0, season_sun + rng.normal(0, 30))
                fertiliser = rng.uniform(60, 220)
                moisture = float(np.clip(rng.normal(24 + 0.02 * (rainfall - 380), 4), 8, 45))
                signal = (
                    3.0
                    + soil
                    + 0.004 * (rainfall - 380)
                    - 0.06 * (temp - 21.0) ** 2
                    + 0.0015 * (sun - 760)
                    + 1.4 * (1 - math.exp(-fertiliser / 90))
                    + 0.03 * (moisture - 24)
                    + 0.05 * (year - 2019)  # better varieties each year: a drift the temporal split must face
                )
                harvest = date(year, month, day) + timedelta(days=offset + int(rng.integers(0, 3)))
                records.append({
                    "date": harvest.isoformat(),
                    "farm": farm,
                    "season": season,
                    "rainfall_mm": round(rainfall, 1),
                    "mean_temp_c": round(temp, 1),
                    "sun_hours": round(sun),
                    "fertiliser_kg_ha": round(fertiliser),
                    "soil_moisture_pct": round(moisture, 1),
                    "yield_t_ha": round(max(0.5, signal + rng.normal(0, 0.25)), 2),
                })
    records.sort(key=lambda record: str(record["date"]))
    return records


def to_csv(records: list[dict[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write the CSV to the path given (default: the packaged glassloop/tabular/datasets/crop.csv)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else Path(__file__).resolve().parent / "crop.csv"
    target.write_text(to_csv(generate()))
    print(f"wrote {target} ({len(generate())} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
