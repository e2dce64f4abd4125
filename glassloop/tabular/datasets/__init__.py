"""Small example tables shipped with glassloop (docs/tabular.md): `crop` (lesson 003) and `house` (lesson 002).

    from glassloop.tabular import datasets
    frame = datasets.load("crop")          # pandas.DataFrame
    datasets.path("crop")                  # Path to the CSV, e.g. for `glassloop fit`
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from glassloop.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

DATA_DIR = Path(__file__).resolve().parent  # the CSVs ship beside this file
# name -> (target column, time column or None, what it is)
DATASETS: dict[str, tuple[str, str | None, str]] = {
    "crop": ("yield_t_ha", "date", "48 harvest records, 4 farms, 2019-2024 (lesson 003); temporal split on date"),
    "house": ("price_k", None, "3 houses: size in 1000 sqft -> price in k$ (lesson 002)"),
}


def names() -> list[str]:
    return list(DATASETS)


def path(name: str) -> Path:
    """Path of the shipped CSV for `name`."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}; pick one of those")
    return DATA_DIR / f"{name}.csv"


def load(name: str) -> pd.DataFrame:
    """The dataset as a pandas DataFrame (pandas is imported here, not by `import glassloop`)."""
    import pandas as pd

    return pd.read_csv(path(name))
