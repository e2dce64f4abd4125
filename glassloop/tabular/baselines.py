"""Validation metrics, scikit-learn baselines on the network's split, the verdict, and their MLflow runs.

    Metrics                  val_mse/val_mae (regression) or val_accuracy/val_log_loss, accumulated chunk by chunk
    fit_baselines            LinearRegression/RandomForest (or Logistic/RandomForestClassifier) fitted on training
                             rows, scored on validation chunks (the in-memory and the streamed fit both call it)
    compare / comparison_table   did the network beat the best baseline, and the table `glassloop fit` prints
    log_baselines            one MLflow sibling run per baseline, beside the network's run, same metric names
    compare_baselines        the public Python API over all of this (`gl.fit` + `MLflowLogger` users)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from glassloop.callbacks.tracking import client as tracking_client
from glassloop.errors import ConfigError

BASELINES = ("linear", "forest")
PRIMARY_METRIC = {"regression": ("val_mse", "lower"), "classification": ("val_accuracy", "higher")}


# ----------------------------------------------------------------------------------------------- metrics
class Metrics:
    """Validation metrics in the baselines' units, accumulated over chunks (equal to one pass over all rows).

    regression: `update(truth, predictions in original units)` -> val_mse, val_mae.
    classification: `update(class indices, probabilities (N, classes))` -> val_accuracy, val_log_loss (natural
    log, probabilities clipped to [1e-15, 1]).
    """

    def __init__(self, task: str) -> None:
        self.task = task
        self.count = 0
        self.sums = [0.0, 0.0]  # regression: squared, absolute error; classification: correct, -log p

    def update(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        if self.task == "regression":
            error = np.asarray(predicted, dtype=np.float64).reshape(-1) - np.asarray(truth, dtype=np.float64).reshape(-1)
            self.sums[0] += float(np.sum(error**2))
            self.sums[1] += float(np.sum(np.abs(error)))
        else:
            truth = np.asarray(truth, dtype=np.int64)
            predicted = np.asarray(predicted, dtype=np.float64)
            picked = np.clip(predicted[np.arange(len(truth)), truth], 1e-15, 1.0)
            self.sums[0] += float(np.sum(predicted.argmax(axis=1) == truth))
            self.sums[1] += float(-np.sum(np.log(picked)))
        self.count += len(truth)

    def result(self) -> dict[str, float]:
        n = max(self.count, 1)
        if self.task == "regression":
            return {"val_mse": self.sums[0] / n, "val_mae": self.sums[1] / n}
        return {"val_accuracy": self.sums[0] / n, "val_log_loss": self.sums[1] / n}


def regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    metrics = Metrics("regression")
    metrics.update(truth, predicted)
    return metrics.result()


def classification_metrics(truth: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy and log-loss (natural log, probabilities clipped to [1e-15, 1])."""
    metrics = Metrics("classification")
    metrics.update(truth, probabilities)
    return metrics.result()


# ----------------------------------------------------------------------------------------------- baselines
def baseline_model(name: str, task: str, seed: int = 0) -> Any:
    """The unfitted scikit-learn estimator behind a baseline name."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression

    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; expected some of {', '.join(BASELINES)} or none; fix --baselines")
    if task == "regression":
        return LinearRegression() if name == "linear" else RandomForestRegressor(n_estimators=100, random_state=seed)
    return (LogisticRegression(max_iter=2000) if name == "linear"
            else RandomForestClassifier(n_estimators=100, random_state=seed))


def _scores(model: Any, x: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    if task == "regression":
        return model.predict(x)
    # Classes absent from the training rows get probability 0, so log-loss is over every class.
    probabilities = np.zeros((len(x), n_classes))
    probabilities[:, model.classes_.astype(int)] = model.predict_proba(x)
    return probabilities


def fit_baselines(train: tuple[np.ndarray, np.ndarray], val_chunks: Iterable[tuple[np.ndarray, np.ndarray]],
                  task: str, names: Sequence[str] = BASELINES, seed: int = 0,
                  n_classes: int | None = None) -> dict[str, dict[str, Any]]:
    """Fit each baseline on the training rows, score it on every validation chunk; name -> {"model", metrics}."""
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline {unknown[0]!r}; expected some of {', '.join(BASELINES)} or none; "
                          "fix --baselines")
    if not names:
        return {}
    train_x, train_y = train
    k = n_classes if n_classes is not None else (int(np.max(train_y)) + 1 if task == "classification" else 1)
    fitted = {}
    for name in names:
        model = baseline_model(name, task, seed)
        model.fit(train_x, train_y)
        fitted[name] = (model, Metrics(task))
    for x, y in val_chunks:
        for model, metrics in fitted.values():
            metrics.update(y, _scores(model, x, task, k))
    return {name: {"model": type(model).__name__, **metrics.result()} for name, (model, metrics) in fitted.items()}


def run_baselines(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], task: str,
                  names: Sequence[str] = BASELINES, seed: int = 0,
                  n_classes: int | None = None) -> dict[str, dict[str, Any]]:
    """Fit scikit-learn baselines on exactly the network's split; name -> {"model": class name, val metrics}.

    regression: LinearRegression, RandomForestRegressor -> val_mse, val_mae (original units).
    classification: LogisticRegression, RandomForestClassifier -> val_accuracy, val_log_loss.
    """
    val_x, val_y = val
    if n_classes is None and task == "classification":
        n_classes = int(max(np.max(train[1]), np.max(val_y))) + 1
    return fit_baselines(train, [(val_x, val_y)], task, names, seed, n_classes)


# ----------------------------------------------------------------------------------------------- verdict
def compare(network: dict[str, float], baselines: dict[str, dict[str, Any]], task: str) -> dict[str, Any]:
    """Did the network beat the best baseline on the primary metric, and by how much (absolute and relative)."""
    metric, direction = PRIMARY_METRIC[task]
    if not baselines:
        return {"metric": metric, "network_better": None,
                "text": "verdict: no baselines (--baselines none), so there is nothing to compare the network with"}
    pick = min if direction == "lower" else max
    best_name = pick(baselines, key=lambda name: baselines[name][metric])
    ours, theirs = network[metric], baselines[best_name][metric]
    gain = (theirs - ours) if direction == "lower" else (ours - theirs)  # > 0: the network is better
    if theirs != 0:
        relative = gain / abs(theirs)
    else:  # a perfect baseline (e.g. a straight line through lesson 002's houses): no ratio, only the sign
        relative = math.copysign(math.inf, gain) if gain != 0 else 0.0
    better = bool(gain > 0)
    shown = f"{metric} {ours:.4g} vs {theirs:.4g}"
    # a near-perfect baseline makes the ratio meaningless (e.g. 1e15 %): give the absolute gap instead
    size = f"{abs(relative):.1%}" if math.isfinite(relative) and abs(relative) < 100 else f"by {abs(gain):.4g}"
    if abs(relative) < 0.02:
        text = (f"verdict: no real difference from the best baseline ({best_name}) on {shown} "
                f"({relative:+.1%}); complexity without improvement is a cost: prefer {best_name}")
    elif better:
        text = f"verdict: the network beat the best baseline ({best_name}) on {shown}, {size} better"
    else:
        text = (f"verdict: the network did NOT beat the best baseline ({best_name}) on {shown}, "
                f"{size} worse; prefer {best_name} for this data")
    return {"metric": metric, "direction": f"{direction} is better", "network": ours, "best_baseline": best_name,
            "best_baseline_value": theirs, "network_better": better, "margin": gain,
            "relative_margin": relative if math.isfinite(relative) else None, "text": text}


def comparison_table(network: dict[str, float], baselines: dict[str, dict[str, Any]], task: str, history: Any,
                     label: str = "network (MLP)", formats: dict[str, str] | None = None) -> str:
    """The network's row, then one per baseline; `formats`: metric -> format spec (default .4f)."""
    metrics = [m for m in network if isinstance(network[m], (int, float))]
    formats = formats or {}
    rows = [(label, network)] + [(f"{name} ({result['model']})", result) for name, result in baselines.items()]
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"{'model':<{width}}" + "".join(f"{m:>14}" for m in metrics)]
    lines += [f"{name:<{width}}" + "".join(f"{format(values[m], formats.get(m, '.4f')):>14}" for m in metrics)
              for name, values in rows]
    if history is not None:
        best_epoch = history.best_epoch + 1 if history.best_epoch is not None else "-"
        lines.append(f"(network: best epoch {best_epoch} of {len(history.records)} run; stop: {history.stop_reason})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- MLflow
def log_baselines(baselines: dict[str, dict[str, Any]], *, tracking_uri: str | None, experiment: str,
                  parent_run_id: str | None = None, network: dict[str, float] | None = None,
                  params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One sibling run per baseline in `experiment`, tagged with the network's run id (and mlflow.parentRunId, so
    the UI nests them), with the same metric names; the network's comparable metrics go on its own run. The
    MlflowClient leaves the global active run untouched."""

    from glassloop.callbacks.tracking import experiment_id

    client = tracking_client(tracking_uri)
    experiment_key = experiment_id(client, experiment, tracking_uri)
    if parent_run_id is not None:
        for key, value in (network or {}).items():
            client.log_metric(parent_run_id, key, value)
        client.set_tag(parent_run_id, "glassloop.role", "network")
    runs: dict[str, str] = {}
    for name, result in baselines.items():
        tags = {"glassloop.role": "baseline", "glassloop.baseline": name}
        if parent_run_id is not None:
            tags |= {"glassloop.parent_run_id": parent_run_id, "mlflow.parentRunId": parent_run_id}
        run_id = client.create_run(experiment_key, run_name=f"baseline-{name}", tags=tags).info.run_id
        for key, value in ({"model": result["model"]} | (params or {})).items():
            client.log_param(run_id, key, value)
        for key, value in result.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "fitted_on_rows":
                client.log_metric(run_id, key, value)
        client.set_terminated(run_id)
        runs[name] = run_id
    return {"tracking_uri": tracking_uri, "experiment": experiment, "experiment_id": experiment_key,
            "run_id": parent_run_id, "baseline_run_ids": runs}


def _arrays(pair: Any) -> tuple[np.ndarray, np.ndarray]:
    inputs, targets = pair
    as_numpy = [value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
                for value in (inputs, targets)]
    x, y = as_numpy
    return x.reshape(len(x), -1).astype(np.float64), (y.reshape(-1) if y.ndim > 1 and y.shape[1] == 1 else y)


def compare_baselines(train: Any, val: Any, *, task: str = "regression", model: Any = None,
                      names: Sequence[str] = BASELINES, seed: int = 0, logger: Any = None) -> dict[str, Any]:
    """Baselines beside a `gl.fit` model, from Python: the code `glassloop fit` runs.

    `train`/`val`: `(inputs, targets)` pairs of tensors or arrays (targets: values for regression, class indices
    for classification). `model`: the trained network (its validation metrics and the verdict are added).
    `logger`: the `gl.MLflowLogger` of that fit; the baselines become sibling runs of its run. Returns
    {"baselines": {name: metrics}, "network": metrics or None, "verdict": ..., "mlflow": run ids or None}.
    """
    if task not in PRIMARY_METRIC:
        raise ConfigError(f"task={task!r}; expected 'regression' or 'classification'")
    train_xy, val_xy = _arrays(train), _arrays(val)
    n_classes = int(max(train_xy[1].max(), val_xy[1].max())) + 1 if task == "classification" else None
    if task == "classification":
        train_xy = (train_xy[0], train_xy[1].astype(np.int64))
        val_xy = (val_xy[0], val_xy[1].astype(np.int64))
    results = run_baselines(train_xy, val_xy, task, names, seed, n_classes)
    network = None
    if model is not None:
        import torch

        inputs = val[0] if hasattr(val[0], "detach") else torch.as_tensor(np.asarray(val[0], dtype=np.float32))
        model.eval()
        with torch.no_grad():
            outputs = model(inputs).detach().cpu().double()
        scores = torch.softmax(outputs, dim=1).numpy() if task == "classification" else outputs.numpy()
        network = (classification_metrics if task == "classification" else regression_metrics)(val_xy[1], scores)
    verdict = compare(network, results, task) if network is not None else None
    tracking = None
    if logger is not None and getattr(logger, "run_id", None) is not None:
        tracking = log_baselines(results, tracking_uri=logger.tracking_uri, experiment=logger.experiment,
                                 parent_run_id=logger.run_id, network=network)
    return {"baselines": results, "network": network, "verdict": verdict, "mlflow": tracking}
