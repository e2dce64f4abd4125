"""The one module that touches private torch APIs: the fused optimizer kernels (`torch._fused_adam_`,
`torch._fused_adamw_`, `torch._fused_sgd_`), the optimizer's step-hook dicts and the flag torch's LR schedulers
read. `tests/core/test_torch_private.py` is the canary.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import optimizer as optimizer_module


def fast_step(optimizer: torch.optim.Optimizer, built_here: bool) -> Any:
    """`optimizer.step` — or, for a fused Adam/AdamW that glassloop built by name, the very same fused kernel called
    directly: identical numbers, without torch.optim's ~65 us of per-call Python (hooks, profiler ranges, state
    walking), a sixth of a small model's step. Anything unusual goes through `optimizer.step()` itself."""
    eligible = built_here and isinstance(optimizer, torch.optim.Adam) and all(
        group.get("fused") and not group.get("amsgrad") and not group.get("maximize")
        and not group.get("capturable") and not isinstance(group["lr"], torch.Tensor)
        for group in optimizer.param_groups)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not eligible or len({(p.device, p.dtype) for p in params}) != 1:
        return optimizer.step

    def step() -> None:
        if has_step_hooks(optimizer):
            optimizer.step()
            return
        for group in optimizer.param_groups:
            with_grad = [p for p in group["params"] if p.grad is not None]
            states = [optimizer.state[p] for p in with_grad]
            if not all(states):  # first step: torch creates the moment buffers and step counters
                optimizer.step()
                return
            if not with_grad:
                continue
            steps = [state["step"] for state in states]
            torch._foreach_add_(steps, 1)
            mark_stepped(optimizer)
            fused_adam("adamw" if group["decoupled_weight_decay"] else "adam",
                       [with_grad, [p.grad for p in with_grad], [state["exp_avg"] for state in states],
                        [state["exp_avg_sq"] for state in states]], steps, group)

    return step


def set_grad_mode(enabled: bool) -> None:
    """What `torch.no_grad()` switches, without building a context-manager object (~3 us a call)."""
    torch._C._set_grad_enabled(enabled)


def aten_kernel(overload: Any) -> Any:
    """The C++ callable behind a `torch.ops.aten.<op>.<overload>`, without its Python `__call__` (~1 us a call)."""
    return getattr(overload, "_op", overload)


def has_step_hooks(optimizer: torch.optim.Optimizer) -> bool:
    return bool(optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
                or optimizer_module._global_optimizer_pre_hooks or optimizer_module._global_optimizer_post_hooks)


def mark_stepped(optimizer: torch.optim.Optimizer) -> None:
    optimizer._opt_called = True  # what torch's LR-scheduler wrapper of optimizer.step records


def has_fused_adam(name: str) -> bool:
    return name in ("adam", "adamw") and hasattr(torch, f"_fused_{name}_")


def fused_adam(name: str, tensors: list[list[torch.Tensor]], steps: list[torch.Tensor], group: dict[str, Any],
               found_inf: torch.Tensor | None = None) -> None:
    """torch._fused_adam_/_fused_adamw_ over lists (params, grads, exp_avgs, exp_avg_sqs) with their step
    counters, under one param group's lr, betas, weight decay and eps: the call every fused Adam step here makes."""
    kernel = torch._fused_adam_ if name == "adam" else torch._fused_adamw_
    params, grads, avgs, avg_sqs = tensors
    beta1, beta2 = group["betas"]
    kernel(params, grads, avgs, avg_sqs, [], steps, amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
           weight_decay=group["weight_decay"], eps=group["eps"], maximize=False, grad_scale=None,
           found_inf=found_inf)


def fused_adam_rows(name: str, tensors: list[list[torch.Tensor]], step: torch.Tensor, lr: float, beta1: float,
                    beta2: float, weight_decay: float, eps: float = 1e-8) -> None:
    """`fused_adam` over row tensors sharing one step counter: gl.sweep's stacked update (glassloop/sweeps/optim.py)."""
    group = {"lr": lr, "betas": (beta1, beta2), "weight_decay": weight_decay, "eps": eps}
    fused_adam(name, tensors, [step] * len(tensors[0]), group)


def flat_update_kind(optimizer: torch.optim.Optimizer) -> str | None:
    """"adam", "adamw" or "sgd" for a one-group fused optimizer whose update glassloop/core/flat.py can run as one
    call per flat buffer; None for anything else (it keeps the per-tensor step)."""
    if len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if not group.get("fused") or group.get("maximize") or group.get("differentiable") \
            or isinstance(group["lr"], torch.Tensor):
        return None
    if type(optimizer) in (torch.optim.Adam, torch.optim.AdamW) and not group.get("amsgrad") \
            and not group.get("capturable"):
        return "adamw" if group["decoupled_weight_decay"] else "adam"
    if type(optimizer) is torch.optim.SGD and has_fused_sgd():
        return "sgd"
    return None


def has_fused_sgd() -> bool:
    return hasattr(torch, "_fused_sgd_")


def flat_update(kind: str, group: dict[str, Any], bucket: Any, first: bool, found_inf: torch.Tensor | None = None
                ) -> None:
    """torch.optim's fused update of one param group over one flat bucket: one call on the whole buffer where that
    is bitwise (`bucket.whole`), else one call over its per-parameter views, as torch.optim makes it.
    `found_inf` (a device flag, 1.0 = skip) makes the kernel leave everything as it was, as under GradScaler."""
    whole = bucket.whole
    params, grads = ([bucket.values], [bucket.grads]) if whole else (bucket.parameters, bucket.grad_views)
    moments = [[moment] for moment in bucket.moments] if whole else bucket.moment_views
    if kind == "sgd":
        torch._fused_sgd_(params, grads, moments[0] if moments else [], weight_decay=group["weight_decay"],
                          momentum=group["momentum"], lr=group["lr"], dampening=group["dampening"],
                          nesterov=group["nesterov"], maximize=False, is_first_step=first, grad_scale=None,
                          found_inf=found_inf)
        return
    # Every parameter's step counter (views of this one tensor), plus a tensor 1: a Python 1 is a new tensor a step.
    bucket.step_counts.add_(bucket.one)
    fused_adam(kind, [params, grads, *moments], bucket.steps[:1] if whole else bucket.steps, group, found_inf)
    if found_inf is not None:  # a skipped update is no step (torch.optim's rule under GradScaler)
        bucket.step_counts.sub_(found_inf)
