"""06 - add MLflow tracking: params, every epoch's metrics, the model and the curves in an embedded SQLite store.

Changed from 05: one more callback, `gl.MLflowLogger(...)`, a baseline logged beside the run (predict the training
mean: does the network beat it?), and where to browse the runs afterwards.
Set GLASSLOOP_EXAMPLE_OUT to choose where the run directory and mlflow.db go (default runs/examples).
"""

import os
from pathlib import Path

import torch
from torch import nn

import glassloop as gl

EPOCHS = int(os.environ.get("GLASSLOOP_EXAMPLE_EPOCHS", 60))
RUN_DIR = Path(os.environ.get("GLASSLOOP_EXAMPLE_OUT", "runs/examples")) / "06_mlflow"
TRACKING_URI = f"sqlite:///{(RUN_DIR.parent / 'mlflow.db').resolve()}"  # one file, no server

# The ssa workload: 2000 close approaches, 4 features, risk = sigmoid of a linear score.
torch.manual_seed(42)
N = 2000
X = torch.rand(N, 4) * torch.tensor([15.0, 5.0, 1.0, 24.0])
y = torch.sigmoid(0.5 * X[:, 0] - 2 * X[:, 1] + 0.3 * X[:, 2] - 0.1 * X[:, 3] - 2).unsqueeze(1)
X = X / torch.tensor([15.0, 5.0, 1.0, 24.0])  # features scaled to [0, 1]
split = int(0.8 * N)
train, val = (X[:split], y[:split]), (X[split:], y[split:])

model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

logger = gl.MLflowLogger(experiment="glassloop-examples", tracking_uri=TRACKING_URI)
callbacks = [gl.EarlyStopping(monitor="val_loss", patience=10, restore_best=True), gl.Checkpoint(RUN_DIR), logger]
history = gl.fit(model, train, val=val, loss="mse", optimizer="adam", lr=1e-3, batch_size=64, epochs=EPOCHS,
                 seed=42, scheduler="cosine", clip_grad_norm=1.0, callbacks=callbacks)
print(f"best epoch {history.best_epoch + 1}: val_loss {history.best_val_loss:.6f}")
print("held-out:", gl.evaluate(model, val, loss="mse", metrics=["mae"]))
print("stopped because:", history.stop_reason)
print("run directory:", sorted(p.name for p in RUN_DIR.iterdir()))
best = gl.load_checkpoint(RUN_DIR / "best.pt")  # weights_only load: tensors and plain data, never code
model.load_state_dict(best["model"])
print(f"best.pt: epoch {best['epoch'] + 1}, val_loss {best['record']['val_loss']:.6f}")
mean_val_loss = float(((val[1] - train[1].mean()) ** 2).mean())  # the baseline: always the training mean
baseline_runs = logger.log_baselines({"mean": {"val_loss": mean_val_loss}})  # a sibling run, same metric name
print(f"baseline run {baseline_runs['mean']}: val_loss {mean_val_loss:.6f} vs the network's {history.best_val_loss:.6f}")
print(f"MLflow run {logger.run_id}; browse it: .venv/bin/mlflow ui --backend-store-uri {TRACKING_URI}")
