"""A small checkpointed run that can interrupt itself at a chosen event boundary (tests/reliability).

    python train.py RUN_DIR CONFIG      CONFIG: "es" / "es_restore" (early stopping fires at epoch 15 of 30;
                                        restore_best False / True), "full" (6 epochs completed, restore_best)
                                        or "fused" (as full, without Dropout: the fused step's path)

Environment:
    GL_TEST_KILL_AT="on_epoch_end:3"   the 3rd time this process reaches that event (fit start counts once)
    GL_TEST_SIGNAL=SIGINT|SIGTERM|SIGKILL   what it sends itself there (default SIGKILL)
    GL_TEST_BAND=user|monitors|reporters    where the interrupting callback sits (monitors: after EarlyStopping,
                                            before the Checkpoint; reporters: after the Checkpoint)
    GL_TEST_TWICE=1                    send it twice in a row (a second Ctrl-C: abort at once)
Writes RUN_DIR/final.pt (weights, records without seconds, best epoch, stop reason) when fit returns unsignalled;
exits 128 + the signal number when a signal interrupted it.
"""

import os
import signal
import sys

import torch
from torch import nn

import glassloop as gl

CONFIGS = {"es": {"epochs": 30, "patience": 3, "lr": 0.05, "restore_best": False},
           "es_restore": {"epochs": 30, "patience": 3, "lr": 0.05, "restore_best": True},
           "full": {"epochs": 6, "patience": 100, "lr": 0.01, "restore_best": True},
           # no Dropout: the fused step, its workspace and the flat buffers (the interrupting callback reads no
           # step, so it leaves them on)
           "fused": {"epochs": 6, "patience": 100, "lr": 0.01, "restore_best": True}}


class Interrupt:
    """Sends the signal at the chosen occurrence of one event."""

    def __init__(self, spec: str, signum: int, band: str, times: int = 1) -> None:
        self.event, count = spec.split(":")
        self.count, self.signum, self.band, self.seen, self.times = int(count), signum, band, 0, times
        setattr(self, self.event, self.fire)

    def fire(self, state) -> None:
        self.seen += 1
        if self.seen == self.count:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)


def main() -> int:
    run_dir, name = sys.argv[1], sys.argv[2]
    config = CONFIGS[name]
    torch.manual_seed(0)
    x = torch.rand(120, 4) * torch.tensor([15.0, 5.0, 1.0, 24.0])
    y = torch.sigmoid(0.5 * x[:, 0] - 2.0 * x[:, 1] + 0.3 * x[:, 2] - 0.1 * x[:, 3] - 2.0).unsqueeze(1)
    y = y + 0.05 * torch.randn_like(y)  # noisy validation: the loss stops improving, so early stopping fires
    dropout = [] if name == "fused" else [nn.Dropout(0.1)]
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), *dropout, nn.Linear(16, 1))
    stopper = gl.EarlyStopping(patience=config["patience"], restore_best=config["restore_best"])
    callbacks = [stopper, gl.Checkpoint(run_dir, resume=True, plot=False)]
    if os.environ.get("GL_TEST_KILL_AT"):
        signum = getattr(signal, os.environ.get("GL_TEST_SIGNAL", "SIGKILL"))
        interrupt = Interrupt(os.environ["GL_TEST_KILL_AT"], signum, os.environ.get("GL_TEST_BAND", "user"),
                              2 if os.environ.get("GL_TEST_TWICE") else 1)
        # The other configs keep the lesson's per-tensor step while it watches each batch (a mixed-path resume);
        # "fused" says its per-batch hook reads nothing of the step, so the fast paths stay on.
        interrupt.reads_step = name != "fused"
        callbacks.append(interrupt)
    history = gl.fit(model, (x[:90], y[:90]), val=(x[90:], y[90:]), epochs=config["epochs"], batch_size=16,
                     lr=config["lr"], seed=3, verbose=False, threads=1, callbacks=callbacks)
    if history.signal is not None:
        return 128 + history.signal
    torch.save({"model": model.state_dict(), "records": [{k: v for k, v in r.items() if k != "seconds"}
                                                         for r in history.records],
                "best_epoch": history.best_epoch, "stop_reason": history.stop_reason,
                "step_path": history.step_path}, f"{run_dir}/final.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
