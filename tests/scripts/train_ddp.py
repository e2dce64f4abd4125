"""DDP check: torchrun --nproc_per_node=2 train_ddp.py OUT [--crash-at EPOCH] [--accumulate K] (also runs as one
plain process).

Global batch 64 either way: 2 ranks x 32 rows or 1 process x 64 rows (with --accumulate K, K micro-batches of
64 / K global rows make each step). Writes OUT/final.pt from rank 0. With
--crash-at, rank 1 kills itself with SIGKILL at that epoch on torchrun's first attempt; torchrun's elastic restart
(--max-restarts) then starts every rank again and they resume from OUT/latest.pt.
"""

import argparse
import os
import signal

import torch
from torch import nn

import glassloop as gl
from glassloop.core.distributed import is_main_process


class CrashOnce:
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_start(self, state):
        first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if first_attempt and os.environ.get("RANK") == "1" and state.epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--crash-at", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rows", type=int, default=320, help="training rows (321: a 1-row last batch)")
    parser.add_argument("--accumulate", type=int, default=1, help="micro-batches of 64 / K rows per step")
    args = parser.parse_args()
    if os.environ.get("RANK", "0") == "0":  # a record of each attempt torchrun made
        with open(os.path.join(args.out, "attempts.log"), "a") as log:
            log.write(os.environ.get("TORCHELASTIC_RESTART_COUNT", "-") + "\n")
    torch.manual_seed(0)
    x = torch.rand(384, 4) * torch.tensor([15.0, 5.0, 1.0, 24.0])
    y = torch.sigmoid(0.5 * x[:, 0] - 2.0 * x[:, 1] + 0.3 * x[:, 2] - 0.1 * x[:, 3] - 2.0).unsqueeze(1)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))
    callbacks = [gl.Checkpoint(args.out, resume=True)]
    if args.crash_at is not None:
        callbacks.insert(0, CrashOnce(args.crash_at))
    history = gl.fit(model, (x[:args.rows], y[:args.rows]), val=(x[args.rows:], y[args.rows:]), epochs=args.epochs,
                     batch_size=64 // args.accumulate, accumulate=args.accumulate, lr=3e-3, seed=1, device="cpu",
                     verbose=False, callbacks=callbacks)
    if is_main_process():
        torch.save({"model": model.state_dict(), "train_loss": history["train_loss"],
                    "val_loss": history["val_loss"]}, os.path.join(args.out, "final.pt"))


if __name__ == "__main__":
    main()
