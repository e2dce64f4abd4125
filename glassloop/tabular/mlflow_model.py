"""The MLflow model of a `glassloop fit` run (models-from-code: MLflow loads this file, never a pickle).

It takes raw table rows (a pandas DataFrame with the training feature columns) and returns what `glassloop
predict` adds to them: `predicted_<target>` in original units (regression) or the class label, and
`probability_<label>` columns for classification. The transform (imputation, one-hot levels, scaling, the target's
inverse) comes from the run's config.json and the weights from a state_dict loaded with
`torch.load(weights_only=True)`; the code is glassloop's own transform (logged beside it with `code_paths`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc


class TableModel(mlflow.pyfunc.PythonModel):
    def __init__(self) -> None:
        self.network: Any = None
        self.transform: Any = None

    @classmethod
    def from_files(cls, config: Path, weights: Path) -> TableModel:
        model = cls()
        model._load(Path(config), Path(weights))
        return model

    def load_context(self, context: Any) -> None:
        self._load(Path(context.artifacts["config"]), Path(context.artifacts["weights"]))

    def _load(self, config: Path, weights: Path) -> None:
        import torch

        from glassloop.core.workloads import mlp
        from glassloop.tabular.transform import TableTransform

        record = json.loads(config.read_text(encoding="utf-8"))
        spec = record["model"]
        self.transform = TableTransform.from_dict(record["transform"])
        self.network = mlp([spec["inputs"], *spec["hidden"], spec["outputs"]], spec["dropout"])
        self.network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.network.eval()

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201  (MLflow reads type hints as a schema)
        import numpy as np
        import pandas as pd
        import torch

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        inputs = torch.as_tensor(np.ascontiguousarray(self.transform.transform(frame), dtype=np.float32))
        with torch.no_grad():
            outputs = self.network(inputs)
        if outputs.dim() == 2 and outputs.shape[1] > 1:
            outputs = torch.softmax(outputs, dim=1)
        columns = self.transform.prediction_columns(outputs.numpy().astype(np.float64))
        return pd.DataFrame(columns, index=frame.index)


mlflow.models.set_model(TableModel())
