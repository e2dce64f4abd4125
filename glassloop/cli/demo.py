"""`glassloop demo`: lesson 004's conjunction-risk workload (`ssa`) end to end with the complete recipe.

Adam + cosine schedule, gradient clipping, early stopping, latest.pt/best.pt, MLflow in an embedded SQLite store,
the loss curves, the diagnosis, and scikit-learn baselines on the same split.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

import glassloop as gl
from glassloop.cli import ArgumentParser
from glassloop.core.checkpoint import write_file
from glassloop.core.workloads import mlp, ssa
from glassloop.errors import ConfigError


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="glassloop demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None,
                        help="run directory (default: runs/demo-<timestamp>); an interrupted one is resumed")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow tracking")
    args = parser.parse_args(argv)
    out = Path(args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "latest.pt").exists())):
        raise ConfigError(f"--out {out} exists and does not hold a demo run; choose a new directory (or leave --out "
                          "out for runs/demo-<timestamp>)")
    if args.epochs < 1:
        raise ConfigError(f"--epochs {args.epochs} must be at least 1")
    tracking_uri = f"sqlite:///{(out.parent / 'mlflow.db').resolve()}"

    train, val = ssa()
    print(f"ssa: {len(train[0])} training and {len(val[0])} validation conjunctions, 4 features -> risk\n")
    torch.manual_seed(42)
    model = mlp((4, 64, 64, 1))
    callbacks: list = [gl.EarlyStopping(patience=10), gl.Checkpoint(out, resume=True)]
    logger = None
    if not args.no_mlflow:
        out.parent.mkdir(parents=True, exist_ok=True)  # the SQLite store lives beside the run directory
        logger = gl.MLflowLogger(experiment="glassloop-demo", tracking_uri=tracking_uri, run_name=out.name)
        callbacks.append(logger)
    history = gl.fit(model, train, val=val, loss="mse", optimizer="adam", lr=1e-3, epochs=args.epochs,
                     batch_size=64, scheduler="cosine", clip_grad_norm=1.0, seed=42, metrics=["mae"],
                     callbacks=callbacks)
    if history.signal is not None:
        print(f"\nInterrupted; latest.pt is saved. Continue with: glassloop demo --out {out}")
        return 128 + history.signal

    # Lesson 004's two scenarios, with the best weights (EarlyStopping restored them).
    high, low = gl.predict(model, torch.tensor([[12.0, 0.3, 0.9, 2.0], [2.0, 4.5, 0.5, 20.0]])).view(-1).tolist()
    print(f"\nHigh-risk scenario: predicted risk = {high:.4f}   Low-risk scenario: predicted risk = {low:.4f}")

    network, baselines, verdict = compare_with_baselines(train, val, history)

    summary = {"workload": "ssa", "best_epoch": history.best_epoch, "best_val_loss": history.best_val_loss,
               "stop_reason": history.stop_reason, "network": network, "baselines": baselines, "verdict": verdict,
               "diagnosis": history.diagnose().to_dict(), "mlflow_run_id": getattr(logger, "run_id", None),
               "tracking_uri": tracking_uri if logger else None}
    write_file(json.dumps(summary, indent=2, default=str).encode(), out / "summary.json")

    print(f"\nRun directory: {out}/  (latest.pt, best.pt, history.csv, curves.png, summary.json)")
    print(f"Resume it:     glassloop demo --out {out}   (after a crash or Ctrl-C; in Python: "
          f"gl.Checkpoint('{out}', resume=True))")
    if logger is not None:
        print(f"MLflow run:    {logger.run_id} in experiment 'glassloop-demo'")
        print(f"Browse it:     .venv/bin/mlflow ui --backend-store-uri {tracking_uri}")
    return 0


def compare_with_baselines(train: tuple, val: tuple, history: gl.History) -> tuple[dict, dict, str]:
    """scikit-learn baselines on the same split, the table and the verdict (glassloop.tabular.baselines)."""
    from glassloop.tabular.baselines import compare, comparison_table, run_baselines

    baselines = run_baselines((train[0].numpy(), train[1].view(-1).numpy()), (val[0].numpy(), val[1].view(-1).numpy()),
                              "regression", seed=42)
    network = {"val_mse": history.best_val_loss, "val_mae": history.records[history.best_epoch]["val_mae"]}
    print()
    print(comparison_table(network, baselines, "regression", history, label="MLP 4-64-64-1 (best)",
                           formats={"val_mse": ".6f", "val_mae": ".5f"}))
    judged = compare(network, baselines, "regression")
    ratio = judged["best_baseline_value"] / network["val_mse"]
    shown = f"val MSE {ratio:.1f}x lower" if ratio > 1 else f"baseline's val MSE {1 / ratio:.1f}x lower"
    verdict = f"{judged['text'].removeprefix('verdict: ')} ({shown})"
    print(f"Verdict: {verdict}")
    return network, baselines, verdict
