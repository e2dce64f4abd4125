"""A checkpointed run for the kill/resume tests: python train_checkpointed.py RUN_DIR [EPOCHS].

Dropout (torch RNG), a per-step warm-up + cosine schedule, early stopping and the in-memory batcher all have state that a resume
must restore exactly. Prints "ready" when training starts; writes RUN_DIR/final.pt (weights + history) at the end.
"""

import sys

import torch
from torch import nn

import glassloop as gl


class Ready:
    def on_fit_start(self, state):
        print("ready", flush=True)


def main() -> int:
    run_dir, epochs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 60
    torch.manual_seed(0)
    x = torch.rand(300, 4) * torch.tensor([15.0, 5.0, 1.0, 24.0])
    y = torch.sigmoid(0.5 * x[:, 0] - 2.0 * x[:, 1] + 0.3 * x[:, 2] - 0.1 * x[:, 3] - 2.0).unsqueeze(1)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 1))
    history = gl.fit(model, (x[:240], y[:240]), val=(x[240:], y[240:]), epochs=epochs, batch_size=8, lr=3e-3,
                     scheduler="warmup_cosine", seed=3, verbose=False,
                     callbacks=[Ready(), gl.EarlyStopping(patience=25), gl.Checkpoint(run_dir, resume=True)])
    if history.signal is not None:  # the shell convention: 128 + the signal number (130 SIGINT, 143 SIGTERM)
        return 128 + history.signal
    torch.save({"model": model.state_dict(), "records": [{k: v for k, v in r.items() if k != "seconds"}
                                                         for r in history.records],
                "best_epoch": history.best_epoch, "stop_reason": history.stop_reason}, f"{run_dir}/final.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
