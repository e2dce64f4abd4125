"""Rank agreement under torchrun: every decision that could differ between ranks is shared, so no rank waits
forever in a collective. torchrun --nproc_per_node=2 train_ddp_agree.py OUT [--signal-at E] [--nan-row R]

--signal-at E: only rank 1 gets SIGTERM during epoch E (after backward of its first batch).
--nan-row R:   row R of the training data is NaN; it lands in one rank's shard only.
Rank 0 writes OUT/result.json: epochs recorded, stop reason.
"""

import argparse
import json
import os
import signal

import torch
from torch import nn

import glassloop as gl
from glassloop.core.distributed import is_main_process


class SignalRankOne:
    def __init__(self, epoch):
        self.epoch = epoch

    def on_after_backward(self, state):
        if os.environ.get("RANK") == "1" and state.epoch == self.epoch and state.batch_index == 0:
            os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--signal-at", type=int, default=None)
    parser.add_argument("--nan-row", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(256, 4, generator=generator)
    y = x.sum(1, keepdim=True)
    if args.nan_row is not None:
        x[args.nan_row] = float("nan")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    callbacks = [gl.EarlyStopping(patience=3)]
    if args.signal_at is not None:
        callbacks.append(SignalRankOne(args.signal_at))
    history = gl.fit(model, (x[:192], y[:192]), val=(x[192:], y[192:]), epochs=args.epochs, batch_size=32,
                     lr=1e-2, seed=3, device="cpu", verbose=False, callbacks=callbacks)
    if is_main_process():
        with open(os.path.join(args.out, "result.json"), "w") as handle:
            json.dump({"epochs": len(history.records), "stop_reason": history.stop_reason}, handle)


if __name__ == "__main__":
    main()
