"""A real MLflow SQLite store shared by a test module (creating MLflow's schema takes seconds, a run milliseconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from glassloop.callbacks.tracking import client


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder: Path = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return {"uri": uri, "client": client(uri), "folder": folder}
