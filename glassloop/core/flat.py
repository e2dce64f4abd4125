"""One buffer per dtype and device for the optimizer glassloop builds by name (fused Adam, AdamW, SGD).

Every parameter's values are a view of one contiguous tensor, every `.grad` a view of a second, and the
optimizer's moment buffers views of a third (and fourth). Clearing the gradients, their norm and clipping are
then each one kernel over the whole model, and the update one call, instead of one of each per tensor. The
`Module` keeps its ordinary `nn.Parameter`s (only their storage moves), so user code, `state_dict()` and
checkpoints see nothing new, and the optimizer's `state` stays valid: `optimizer.step()` itself still works on
the same views.

The update kernels are torch's own fused ones (`torch._fused_adam_`, `_fused_adamw_`, `_fused_sgd_`), and the
numbers are bitwise those of `torch.optim` on the same parameters (tests/core/test_flat.py). torch's CPU kernels
cut each tensor into 64-byte units and run a tensor's last `n % 8` (or 16) elements through scalar code that
rounds differently from the vector code. So one call on the whole buffer is bitwise only when every segment but
the last fills whole 64-byte units (widths that are multiples of 16, as most hidden sizes are); otherwise the
update is one call over the per-parameter views, exactly as `torch.optim` makes it (~1-2 us more per tensor).

What changes is what `zero_grad(set_to_none=False)` changes: a parameter that a later step does not reach gets
a zero gradient instead of none. Parameters without a gradient when the buffers are first built (an unused
layer) keep the per-tensor path for the whole run.
"""

from __future__ import annotations

from typing import Any

import torch

from glassloop.core.gradients import clear_gradients, grad_norm, scale_to
from glassloop.core.torch_private import flat_update, flat_update_kind, has_step_hooks, mark_stepped


class Bucket:
    """The parameters of one (device, dtype): their values, gradients and optimizer moments as flat tensors, and
    the per-parameter views of each that the update kernel takes. The segments are packed without gaps, so the
    norm of the gradient buffer is bitwise `vector_norm(cat(grads))`, the per-tensor path's norm."""

    def __init__(self, parameters: list[torch.nn.Parameter], moment_names: tuple[str, ...],
                 state: dict[Any, dict[str, Any]]) -> None:
        self.parameters = parameters
        self.offsets, total = [], 0
        for p in parameters:
            self.offsets.append(total)
            total += p.numel()
        self.values = self.gather(list(parameters), total)
        self.grads = self.gather([p.grad for p in parameters], total)
        for p, value, grad in zip(parameters, self.views(self.values), self.views(self.grads)):
            p.data, p.grad = value, grad
        self.grad_views = [p.grad for p in parameters]
        # Every segment but the last fills whole 64-byte units: one kernel call over the whole buffer is bitwise.
        self.whole = all(p.numel() * p.element_size() % 64 == 0 for p in parameters[:-1])
        # Fresh SGD momentum is created by the first step (torch copies the first gradient into it).
        self.fresh = any(state[p].get(name) is None for name in moment_names for p in parameters)
        self.moments = [self.gather([state[p].get(name) for p in parameters], total) for name in moment_names]
        self.moment_views = [self.views(moment) for moment in self.moments]
        for name, views in zip(moment_names, self.moment_views):
            for p, view in zip(parameters, views):
                state[p][name] = view
        self.steps: list[torch.Tensor] = []  # Adam's per-parameter step counters: views of one tensor, one add
        self.step_counts = torch.zeros(len(parameters), dtype=torch.float32, device=self.values.device)
        self.one = torch.ones((), dtype=torch.float32, device=self.values.device)
        if "exp_avg" in moment_names:  # (fused: float32 on the device, as torch.optim keeps them)
            if "step" in state[parameters[0]]:
                self.step_counts.copy_(torch.stack([state[p]["step"].to(self.step_counts) for p in parameters]))
            self.steps = list(self.step_counts.unbind())
            for p, step in zip(parameters, self.steps):
                state[p]["step"] = step

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return [flat[offset:offset + p.numel()].view_as(p) for offset, p in zip(self.offsets, self.parameters)]

    def gather(self, tensors: list[torch.Tensor | None], total: int) -> torch.Tensor:
        """One flat tensor holding `tensors` at their offsets (all zeros where any is missing)."""
        first = self.parameters[0]
        flat = torch.zeros(total, dtype=first.dtype, device=first.device)
        if all(t is not None for t in tensors):
            for view, tensor in zip(self.views(flat), tensors):
                view.copy_(tensor.detach())
        return flat

    def intact(self) -> bool:
        """Still views of the buffers: a checkpoint restore or user code may have replaced a tensor."""
        values, grads = self.values.data_ptr(), self.grads.data_ptr()
        for p, offset in zip(self.parameters, self.offsets):
            item = p.element_size()
            if p.data_ptr() != values + offset * item or p.grad is None or p.grad.data_ptr() != grads + offset * item:
                return False
        return True


class FlatOptimizer:
    """Clear, norm (+ clip) and step for `optimizer`, over one flat buffer per (device, dtype) once built.

    Until the buffers exist (and whenever `refresh()` finds them replaced) it is the per-tensor path:
    `clear_gradients`, `grad_norm` and `fallback_step`, with the same numbers. The buffers are
    built at the first `norm()` after a backward pass, when every parameter has its gradient, so the first step of
    a run and of a resumed run take the same path.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, parameters: list[torch.Tensor], fallback_step: Any,
                 enabled: bool, torch_clip: bool = True) -> None:
        self.optimizer, self.parameters, self.fallback_step = optimizer, parameters, fallback_step
        # Built by name, the per-tensor path clips by the flat rule too, so a run's numbers never depend on
        # which path a step took (a resume with other callbacks stays bitwise); a user's optimizer keeps torch's.
        self.torch_clip = torch_clip
        self.kind = flat_update_kind(optimizer) if enabled else None
        self.buckets: list[Bucket] = []
        self.found_inf: torch.Tensor | None = None  # check_finite_every=N: the device flag that skips an update
        self.overwritten = False  # True when every step writes every gradient (the fused step): clear() can skip
        self.refused = self.kind is None or not all(
            isinstance(p, torch.nn.Parameter) and p.is_contiguous() and p.layout == torch.strided for p in parameters)

    @property
    def active(self) -> bool:
        return bool(self.buckets)

    @property
    def skips_on_device(self) -> bool:
        """The next step() honours `found_inf`: the flat kernels run (no step hook sends it to optimizer.step)."""
        return bool(self.buckets) and not has_step_hooks(self.optimizer)

    def refresh(self) -> None:
        """At each epoch start: drop buffers whose views were replaced (they are rebuilt at the next norm)."""
        if self.buckets and not all(bucket.intact() for bucket in self.buckets):
            self.buckets = []

    def clear(self) -> None:
        if self.buckets:
            if self.overwritten:
                return
            for bucket in self.buckets:
                bucket.grads.zero_()                                   # one kernel per buffer
        else:
            clear_gradients(self.parameters)

    def norm(self, max_norm: float | None) -> torch.Tensor:
        """The pre-clip L2 norm of all gradients; clips them in place to `max_norm` when it is set."""
        if not self.buckets and not self.build():
            return grad_norm(self.parameters, max_norm, self.torch_clip)
        norms = [torch.linalg.vector_norm(bucket.grads) for bucket in self.buckets]
        total = norms[0] if len(norms) == 1 else torch.linalg.vector_norm(torch.stack(norms))
        if max_norm is not None:
            scale_to([bucket.grads for bucket in self.buckets], total, max_norm)  # one mul_ per buffer
        return total

    def step(self) -> None:
        optimizer = self.optimizer
        if not self.buckets or has_step_hooks(optimizer):
            self.fallback_step()
            return
        group = optimizer.param_groups[0]
        mark_stepped(optimizer)
        for bucket in self.buckets:
            flat_update(self.kind, group, bucket, bucket.fresh, self.found_inf)
            bucket.fresh = False

    def build(self) -> bool:
        """Move every parameter, gradient and moment into flat buffers; False (for good) where that can't be done."""
        if self.refused:
            return False
        state = self.optimizer.state
        if any(p.grad is None or p.grad.is_sparse for p in self.parameters) or not consistent(state, self.parameters):
            self.refused = True  # an unused parameter or half-built state: keep torch.optim's own semantics
            return False
        momentum = self.optimizer.param_groups[0].get("momentum", 0)
        names = ("exp_avg", "exp_avg_sq") if self.kind != "sgd" else ("momentum_buffer",) if momentum else ()
        buckets: dict[tuple[torch.device, torch.dtype], list[torch.nn.Parameter]] = {}
        for p in self.parameters:
            buckets.setdefault((p.device, p.dtype), []).append(p)
        with torch.no_grad():
            self.buckets = [Bucket(group, names, state) for group in buckets.values()]
        return True


def consistent(state: dict[Any, dict[str, Any]], parameters: list[torch.Tensor]) -> bool:
    """The optimizer state is all-or-nothing, with one step count shared by every parameter."""
    present = [bool(state.get(p)) for p in parameters]
    if not any(present):
        return True
    if not all(present):
        return False
    steps = {float(state[p]["step"]) for p in parameters if "step" in state[p]}
    return len(steps) <= 1
