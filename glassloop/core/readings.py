"""`fit(check_finite_every=N)`: the step's loss and pre-clip norm stay on the device and are read every Nth step.

Reading two numbers costs a host-device sync on an accelerator, which stalls the queue of kernels every step. With
N > 1 the NaN/Inf guard moves onto the device: each step folds "is the loss or the norm non-finite?" into one
flag, and torch's fused update kernels take that flag as `found_inf` and skip the update (as they do for
`torch.amp.GradScaler`), so no update ever runs on a NaN even before the host sees it. Every Nth step (and at the
epoch's end or a signal) the pending values are read in one sync; the first non-finite one stops the run with
the usual message, and the steps after it, all skipped on the device, are taken back out of the counts. What the
host had already done for those skipped steps stays done: a per-batch LR schedule has moved on by them.

On a CPU there is no queue to stall: the flag costs a few small kernels and saves nothing (N = 1 is the default).
"""

from __future__ import annotations

import torch


class DeferredReadings:
    def __init__(self, every: int, device: torch.device) -> None:
        self.every = every
        self.found_inf = torch.zeros((), dtype=torch.float32, device=device)  # 1.0 from the first bad step on
        self.pending: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor, norm: torch.Tensor) -> bool:
        """Keep this step's loss and norm on the device and raise the skip flag if either is non-finite;
        True when the pending values are due to be read."""
        pair = torch.stack((loss.detach().float(), norm.detach().float()))
        bad = torch.isfinite(pair).logical_not_().any().float()
        torch.maximum(self.found_inf, bad, out=self.found_inf)
        self.pending.append(pair)
        return len(self.pending) >= self.every

    def read(self) -> list[tuple[float, float]]:
        """The pending (loss, norm) pairs, oldest first: one host sync for all of them."""
        if not self.pending:
            return []
        values = torch.stack(self.pending).tolist()
        self.pending = []
        return [(loss, norm) for loss, norm in values]
