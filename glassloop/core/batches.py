"""Where batches come from.

- `TensorBatcher`: the fast path for `(inputs, targets)` tensors in memory: one seeded permutation and one gather
  per epoch, then `split` views. No DataLoader, no per-sample collate. It knows its position inside an epoch so a
  checkpoint taken mid-epoch resumes at the next batch, and it can shard each epoch across DDP ranks. Structured
  inputs (a dict, tuple or nested structure of tensors, see glassloop/core/structured.py) are held as their
  leaves: the same permutation, splits and shards apply to every leaf, and a `Layout` rebuilds each batch.
- Anything else (`Dataset`, `DataLoader`, a re-iterable of batches) goes through `IterableSource`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import torch

from glassloop.core.devices import move_to
from glassloop.core.structured import InputError, Layout, describe, is_structure, structure_layout
from glassloop.errors import ConfigError


class TensorBatcher:
    """Mini-batches from in-memory tensors, shuffled by a seeded per-epoch permutation.

    `tensors` are the leaves: `(inputs, targets)` for plain pairs, or every input leaf then the targets when a
    `layout` says how to rebuild structured inputs (only then does a batch cost more than the split views).
    """

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int | None, shuffle: bool = True,
                 seed: int | None = None, rank: int = 0, world_size: int = 1, layout: Layout | None = None) -> None:
        self.tensors = tensors
        self.layout = layout
        self.n = len(tensors[0])
        self.batch_size = self.n if batch_size is None else int(batch_size)
        self.shuffle = shuffle
        self.generator = torch.Generator()
        self.generator.manual_seed(torch.initial_seed() if seed is None else seed)
        self.rank, self.world_size = rank, world_size
        self.position = 0  # batches already yielded in the current epoch
        self.epoch_rng_state: torch.Tensor | None = None  # generator state before this epoch's permutation

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def to(self, device: torch.device) -> TensorBatcher:
        self.tensors = tuple(t.to(device) for t in self.tensors)
        return self

    def epoch(self) -> Iterator[Any]:
        """This epoch's batches; resumes mid-epoch after `load_state_dict`."""
        batches = self._leaf_batches()
        return batches if self.layout is None else map(self.layout.rebuild, batches)

    def _leaf_batches(self) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.epoch_rng_state is None:  # a fresh epoch (not a resumed one)
            self.epoch_rng_state = self.generator.get_state()
            self.position = 0
        else:
            self.generator.set_state(self.epoch_rng_state)
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else None
        # index_select: the same gather as t[order], about a third of advanced indexing's cost on small rows
        tensors = self.tensors if order is None else tuple(t.index_select(0, order.to(t.device)) for t in self.tensors)
        batches = zip(*(t.split(self.batch_size) for t in tensors))
        for batch in itertools.islice(batches, self.position, None):
            self.position += 1
            if self.world_size > 1:
                if len(batch[0]) < self.world_size:
                    continue  # a last global batch smaller than the ranks would leave some rank an empty shard
                batch = self._shard(batch)
            yield batch
        self.epoch_rng_state = None

    @property
    def mid_epoch(self) -> bool:
        """True while an epoch has batches left (its loop was left early), False once it ran to the end."""
        return self.epoch_rng_state is not None

    def _shard(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        # Under DDP every rank draws the same permutation and keeps its slice of each global batch.
        return tuple(t.tensor_split(self.world_size)[self.rank] for t in batch)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "position": self.position,
                "epoch_rng_state": self.epoch_rng_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.position = state["position"]
        self.epoch_rng_state = state["epoch_rng_state"]


class IterableSource:
    """A `DataLoader`, a `Dataset` (wrapped in a DataLoader), or any re-iterable of batches."""

    def __init__(self, data: Any, batch_size: int | None, shuffle: bool, seed: int | None) -> None:
        from torch.utils.data import DataLoader, Dataset, IterableDataset

        self.generator: torch.Generator | None = None  # the shuffle generator of a DataLoader built here
        if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
            self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
            size = len(data) if batch_size is None else batch_size  # type: ignore[arg-type]
            data = DataLoader(data, batch_size=size, shuffle=shuffle, generator=self.generator)
        if isinstance(data, Iterator):
            raise ConfigError(
                f"training data is a one-shot iterator ({type(data).__name__}); it would be empty after the first "
                "epoch. Pass a DataLoader, a Dataset, a list of batches, or an (inputs, targets) pair of tensors")
        self.data = data
        self.mid_epoch = False
        self.expect_pairs = False  # set when the loop unpacks (inputs, targets): each epoch's first batch is checked

    def __len__(self) -> int:
        try:
            return len(self.data)
        except TypeError:
            return 0

    def to(self, device: torch.device) -> IterableSource:
        self.device = device  # batches are moved one by one as they come
        return self

    def epoch(self) -> Iterator[Any]:
        self.mid_epoch = True
        device = getattr(self, "device", None)
        batches: Iterator[Any] = iter(self.data)
        if self.expect_pairs:  # once per epoch, not per batch
            first = next(batches, None)
            if first is not None:
                check_pair_batch(first)
                batches = itertools.chain((first,), batches)
        for batch in batches:
            yield batch if device is None else move_to(batch, device)
        self.mid_epoch = False

    def state_dict(self) -> dict[str, Any]:
        # A DataLoader without its own generator shuffles from torch's global RNG, which checkpoints restore.
        return {"generator": self.generator.get_state()} if self.generator is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])


def calls_structured(source: Any) -> bool:
    """Whether the loop must call the model through `StructuredCall` (glassloop/core/structured.py).

    In-memory plain tensors never do (`outputs = model(inputs)` as it is); structured in-memory inputs do, and so
    does a streamed source, whose batches may hold structures (a type check per batch next to a DataLoader's).
    """
    return not isinstance(source, TensorBatcher) or source.layout is not None


def check_pair_batch(batch: Any) -> None:
    """A batch the loop unpacks as `inputs, targets = batch` (a dict of two keys would unpack its key names)."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise InputError(f"a batch is {describe(batch)}; expected an (inputs, targets) pair, where inputs may be a "
                         "tensor, a dict or a tuple of tensors: return (inputs, targets) from the Dataset or iterable, "
                         "or pass compute_loss=fn(model, batch) for other batch shapes")


def as_tensor(value: Any, name: str) -> torch.Tensor:
    """numpy arrays and pandas objects become tensors; float64 becomes float32 (the model's usual dtype)."""
    if isinstance(value, torch.Tensor):
        return value
    try:
        import numpy as np

        array = np.asarray(value)
    except Exception as error:  # noqa: BLE001 - any conversion failure is the same user mistake
        raise ConfigError(f"{name} of type {type(value).__name__} cannot become a tensor ({error}); "
                          "pass a torch.Tensor or numpy array") from None
    tensor = torch.from_numpy(array.copy()) if array.dtype != object else None
    if tensor is None:
        raise ConfigError(f"{name} holds Python objects (dtype=object); pass a numeric tensor or array")
    return tensor.float() if tensor.dtype == torch.float64 else tensor


def make_source(data: Any, batch_size: int | None, shuffle: bool, seed: int | None, name: str = "train",
                rank: int = 0, world_size: int = 1) -> TensorBatcher | IterableSource:
    """Pick the fastest correct way to iterate `data` (see the module docstring)."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size={batch_size!r} is not a positive integer; use e.g. batch_size=32, "
                          "or None for full batch")
    if data is None:
        raise ConfigError(f"{name} data is None; pass (inputs, targets) tensors, a Dataset or a DataLoader")
    if isinstance(data, dict):
        raise ConfigError(f"{name} data is a dict; pass (inputs, targets), where inputs may be a dict of tensors "
                          "(the model is called as model(**inputs)), a Dataset, a DataLoader, or a list of batches "
                          "(other batch shapes train with compute_loss=fn(model, batch))")
    if isinstance(data, tuple) and data and all(isinstance(t, torch.Tensor) for t in data) and len(data) != 2:
        raise ConfigError(f"{name} data is a {type(data).__name__} of {len(data)} tensors; expected (inputs, targets). "
                          "Several inputs: pass a list of batches and compute_loss=fn(model, batch)")
    if isinstance(data, (tuple, list)) and len(data) == 2 and not _looks_like_batches(data):
        tensors, layout = in_memory(data[0], data[1], name)
        return TensorBatcher(tensors, batch_size, shuffle, seed, rank, world_size, layout)
    return IterableSource(data, batch_size, shuffle, seed)


def in_memory(inputs: Any, targets: Any, name: str) -> tuple[tuple[torch.Tensor, ...], Layout | None]:
    """The leaves of an in-memory `(inputs, targets)` pair, rows checked, and the layout of structured inputs."""
    if is_structure(inputs):
        tensors, layout = structure_layout(inputs, targets, name, as_tensor)
    else:
        tensors, layout = (as_tensor(inputs, f"{name} inputs"), as_tensor(targets, f"{name} targets")), None
        for tensor, what in zip(tensors, ("inputs", "targets")):
            if tensor.dim() == 0:
                raise InputError(f"{name} {what} is a 0-d tensor (value {tensor.item()!r}); expected one row per "
                                 "example: use tensor.view(1, -1) for one example, or stack the examples into a "
                                 "(rows, features) tensor")
        if len(tensors[0]) != len(tensors[1]):
            raise ConfigError(f"{name} inputs have {len(tensors[0])} rows but targets have {len(tensors[1])}; "
                              "they must have the same first dimension")
    if len(tensors[0]) == 0:
        raise ConfigError(f"{name} data is empty (0 rows); pass at least one example")
    return tensors, layout


def _looks_like_batches(data: Any) -> bool:
    # A list of two batches [(x0, y0), (x1, y1)] is not an (inputs, targets) pair.
    return all(isinstance(item, (tuple, list, dict)) for item in data)
