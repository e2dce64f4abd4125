"""Gradient accumulation: k micro-batches, then one optimizer step.

Each micro-batch's loss is scaled by its share of the group's rows before backward, so for mean-reduced losses
k micro-batches of b rows give the gradient of one batch of k*b rows. Groups never span epochs: the last group
of an epoch may be shorter (fewer micro-batches, or a short last batch) and is scaled by its own rows, so it
equals one batch of those rows. For sources whose length is unknown (plain iterables), groups are counted in
micro-batches (scale 1/k) and micro-batches left over at the epoch's end are dropped with their gradients.
Checkpoints happen only at group boundaries (a signal stops after the group's step), so a resume is exact.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from glassloop.core.batches import TensorBatcher

NO_CONTEXT = contextlib.nullcontext()


class Accumulation:
    def __init__(self, k: int, precision: Any, model: torch.nn.Module, world_size: int) -> None:
        self.k = k
        self.precision = precision
        self.model = model  # the DDP wrapper under torchrun: non-final micro-batches run in its no_sync()
        self.ddp = world_size > 1 and k > 1
        self.plain = k == 1 and precision.scaler is None  # the lesson's own `loss.backward()`
        self.offset, self.batches, self.rows, self.batch_size = 0, 0, 0, 0
        self.loss: torch.Tensor | None = None

    def start_epoch(self, source: Any) -> None:
        """Where this epoch's batch indices start (a resumed epoch continues at a group boundary)."""
        self.loss = None
        in_memory = isinstance(source, TensorBatcher)
        self.offset = source.position if in_memory and source.mid_epoch else 0
        self.batches = len(source)
        self.rows, self.batch_size = (source.n, source.batch_size) if in_memory else (0, 0)

    def starts_group(self, index: int) -> bool:
        return self.k == 1 or (self.offset + index) % self.k == 0

    def ends_group(self, index: int) -> bool:
        position = self.offset + index
        return self.k == 1 or (position + 1) % self.k == 0 or position + 1 == self.batches

    def sync(self, index: int) -> Any:
        """DDP all-reduces gradients only on a group's last micro-batch."""
        return self.model.no_sync() if self.ddp and not self.ends_group(index) else NO_CONTEXT

    def scale(self, index: int) -> float:
        if self.k == 1:
            return 1.0
        position = self.offset + index
        if not self.rows:  # unknown rows: count micro-batches (the last group may be shorter when len is known)
            first = position - position % self.k
            size = min(self.k, self.batches - first) if self.batches else self.k
            return 1.0 / size
        b, first = self.batch_size, (position - position % self.k) * self.batch_size
        group_rows = min(first + self.k * b, self.rows) - first
        return (min((position + 1) * b, self.rows) - position * b) / group_rows

    def backward(self, loss: torch.Tensor, index: int) -> bool:
        """Scaled backward of one micro-batch; True when the group is complete and the optimizer may step."""
        scale = self.scale(index)
        scaled = loss * scale if scale != 1.0 else loss
        self.precision.backward(scaled)
        self.loss = scaled.detach() if self.loss is None or self.starts_group(index) else self.loss + scaled.detach()
        return self.ends_group(index)

    def group_loss(self) -> torch.Tensor:
        """The group's loss: the loss one batch of all its rows would have had (mean-reduced losses)."""
        loss, self.loss = self.loss, None
        return loss
