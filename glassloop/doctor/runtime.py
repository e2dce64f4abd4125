"""Runtime probes (GL2xx): a few real steps on one batch, on the user's own objects, then everything restored.

`check(model, loss_fn, optimizer, batch)` snapshots the model and optimizer state_dicts, the gradients, the
train/eval flag and the RNG, runs the probes, and puts all of it back, so calling it before training changes
nothing.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable

import torch
from torch import nn

from glassloop.doctor.findings import Finding, finding
from glassloop.errors import ConfigError

INDEX_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)
FLOAT_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss, nn.BCELoss, nn.BCEWithLogitsLoss)


def finite(tensor: torch.Tensor) -> bool:
    """True unless a floating tensor holds NaN/Inf."""
    return not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())


_finite = finite


def broadcast_shape(a: torch.Size, b: torch.Size) -> torch.Size | None:
    """The shape `a` and `b` broadcast to, or None when they do not broadcast."""
    try:
        return torch.broadcast_shapes(a, b)
    except RuntimeError:
        return None


class _Snapshot:
    """Everything a probe may touch, restored exactly afterwards."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        self.model_state = copy.deepcopy(model.state_dict())
        self.optimizer_state = copy.deepcopy(optimizer.state_dict())
        self.grads = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
        self.modes = [m.training for m in model.modules()]
        self.rng = torch.get_rng_state()

    def restore(self) -> None:
        self.model.load_state_dict(self.model_state)
        self.optimizer.load_state_dict(self.optimizer_state)
        for param, grad in zip(self.model.parameters(), self.grads):
            param.grad = None if grad is None else grad.clone()
        for module, mode in zip(self.model.modules(), self.modes):
            module.training = mode
        torch.set_rng_state(self.rng)


def check(model: nn.Module, loss_fn: Callable, optimizer: torch.optim.Optimizer, batch,
          *, steps: int = 30, train_step: Callable | None = None, path: str = "<runtime>") -> list[Finding]:
    """Probe one `(inputs, targets)` batch; returns GL2xx findings. The model and optimizer are left as found.

    `train_step(batch) -> loss`, when given, is your own step (zero_grad/forward/backward/step); it is run twice
    from the same weights to see whether gradients accumulate between steps (GL201).
    """
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise ConfigError(f"check() got a batch of type {type(batch).__name__}; expected an (inputs, targets) pair")
    inputs, targets = batch
    snapshot = _Snapshot(model, optimizer)
    found: list[Finding] = []

    def add(code: str, detail: str = "", severity: str | None = None) -> None:
        found.append(finding(path, 0, code, detail, severity))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # torch's broadcast warning: reported as GL205 instead
        try:
            _probe(model, loss_fn, optimizer, inputs, targets, steps, train_step, snapshot, add)
        finally:
            snapshot.restore()
    return found


def _probe(model, loss_fn, optimizer, inputs, targets, steps, train_step, snapshot, add) -> None:
    if not model.training:
        add("GL209", "model.training is False")
    lrs = [group.get("lr", 0.0) for group in optimizer.param_groups]
    if any(float(lr) == 0.0 for lr in lrs):
        add("GL208", f"param_groups lr = {lrs}")
    model.train()
    for name, tensor in (("inputs", inputs), ("targets", targets)):
        if isinstance(tensor, torch.Tensor) and not _finite(tensor):
            add("GL207", f"{name} contain NaN/Inf")
    outputs = model(inputs)
    if isinstance(outputs, torch.Tensor) and not _finite(outputs):
        add("GL207", "model outputs contain NaN/Inf")
    if _target_mismatch(loss_fn, outputs, targets, add):
        return
    _broadcast(loss_fn, outputs, targets, add)
    loss = loss_fn(outputs, targets)
    if loss.dim() != 0 and loss.numel() != 1:
        add("GL204", f"loss shape {tuple(loss.shape)}")
        loss = loss.mean()
    if not _finite(loss):
        add("GL207", f"loss = {loss.item()}")
        return
    _initial_loss(loss_fn, outputs, targets, loss.detach().item(), add)

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_grad = [n for n, p in params if p.grad is None]
    if no_grad:
        add("GL202", ", ".join(no_grad[:5]) + (" ..." if len(no_grad) > 5 else ""))
    if any(p.grad is not None and not _finite(p.grad) for _, p in params):
        add("GL207", "gradients contain NaN/Inf")
        return
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    before = {n: p.detach().clone() for n, p in params}
    optimizer.step()
    unchanged = [n for n, p in params if p.grad is not None and p.grad.abs().sum() > 0
                 and torch.equal(before[n], p.detach())]
    missing = [n for n, p in params if id(p) not in in_optimizer]
    if unchanged or missing:
        add("GL203", "; ".join(filter(None, [
            ("unchanged: " + ", ".join(unchanged[:5])) if unchanged else "",
            ("not in the optimizer: " + ", ".join(missing[:5])) if missing else ""])))
    if train_step is not None:
        _accumulation(model, train_step, (inputs, targets), snapshot, add)
    if found_blocking(lrs):
        return
    _overfit(model, loss_fn, optimizer, inputs, targets, steps, snapshot, add)


def found_blocking(lrs: list) -> bool:
    return any(float(lr) == 0.0 for lr in lrs)


def _target_mismatch(loss_fn, outputs, targets, add) -> bool:
    if not isinstance(targets, torch.Tensor) or not isinstance(outputs, torch.Tensor):
        return False
    if isinstance(loss_fn, INDEX_LOSSES) or getattr(loss_fn, "__name__", "") in ("cross_entropy", "nll_loss"):
        if targets.is_floating_point() and targets.shape != outputs.shape:
            add("GL206", f"class-index loss got {targets.dtype} targets of shape {tuple(targets.shape)}")
            return True
        if outputs.dim() == 2 and outputs.shape[1] == 1:
            add("GL206", "class-index loss on a single output column (loss is always 0)")
            return True
    elif isinstance(loss_fn, FLOAT_LOSSES) and not targets.is_floating_point():
        add("GL206", f"{type(loss_fn).__name__} got integer targets ({targets.dtype})")
        return True
    return False


def _broadcast(loss_fn, outputs, targets, add) -> None:
    if not isinstance(targets, torch.Tensor) or not isinstance(outputs, torch.Tensor):
        return
    if isinstance(loss_fn, INDEX_LOSSES) or not targets.is_floating_point():
        return
    if outputs.shape != targets.shape:
        shape = broadcast_shape(outputs.shape, targets.shape)
        if shape is not None and (shape != outputs.shape or shape != targets.shape):
            add("GL205", f"outputs {tuple(outputs.shape)} vs targets {tuple(targets.shape)} -> {tuple(shape)}")


def _initial_loss(loss_fn, outputs, targets, value: float, add) -> None:
    expected = None
    if isinstance(loss_fn, nn.CrossEntropyLoss) and outputs.dim() == 2 and outputs.shape[1] > 1:
        expected = math.log(outputs.shape[1])
    elif isinstance(loss_fn, nn.BCEWithLogitsLoss):
        expected = math.log(2.0)
    if expected is not None and value > 3 * expected + 1.0:
        add("GL211", f"initial loss {value:.3g}, expected about {expected:.3g} for this task")
    elif isinstance(loss_fn, nn.MSELoss) and isinstance(targets, torch.Tensor) and targets.is_floating_point():
        scale = float((targets.float() ** 2).mean()) + float(targets.float().var()) if targets.numel() > 1 else 1.0
        if value > 100 * max(scale, 1e-8):
            add("GL211", f"initial MSE {value:.3g} is >100x the target's second moment {scale:.3g}")


def _accumulation(model, train_step, batch, snapshot, add) -> None:
    snapshot.restore()
    torch.manual_seed(0)
    train_step(batch)
    first = [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
    model.load_state_dict(snapshot.model_state)   # same weights, gradients left as the step left them
    torch.manual_seed(0)
    train_step(batch)
    for grad, param in zip(first, model.parameters()):
        if grad is None or param.grad is None or grad.abs().sum() == 0:
            continue
        if torch.allclose(param.grad, 2 * grad, rtol=1e-3, atol=1e-6):
            add("GL201", "the second step's gradient is twice the first on the same batch")
            return


def _overfit(model, loss_fn, optimizer, inputs, targets, steps, snapshot, add) -> None:
    snapshot.restore()
    model.train()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss = loss.mean() if loss.dim() else loss
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().item())
    if not all(math.isfinite(v) for v in losses):
        add("GL207", "the loss became non-finite while over-fitting one batch")
    elif losses[-1] > 0.9 * losses[0]:
        add("GL210", f"loss {losses[0]:.4g} -> {losses[-1]:.4g} after {steps} steps on one batch")
