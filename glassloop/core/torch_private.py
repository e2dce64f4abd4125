"""The one module that touches private torch APIs: the fused Adam/AdamW kernels (`torch._fused_adam_`,
`torch._fused_adamw_`) and the optimizer's step-hook dicts. `tests/core/test_torch_private.py` is the canary.
"""

from __future__ import annotations

from typing import Any

import torch


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
        if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:
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
            kernel = torch._fused_adamw_ if group["decoupled_weight_decay"] else torch._fused_adam_
            beta1, beta2 = group["betas"]
            optimizer._opt_called = True  # what torch's scheduler wrapper of optimizer.step records
            kernel(with_grad, [p.grad for p in with_grad], [state["exp_avg"] for state in states],
                   [state["exp_avg_sq"] for state in states], [], steps, amsgrad=False, lr=group["lr"],
                   beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                   maximize=False, grad_scale=None, found_inf=None)

    return step


def has_fused_adam(name: str) -> bool:
    return name in ("adam", "adamw") and hasattr(torch, f"_fused_{name}_")


def fused_adam_rows(name: str, tensors: list[list[torch.Tensor]], step: torch.Tensor, lr: float, beta1: float,
                    beta2: float, weight_decay: float, eps: float = 1e-8) -> None:
    """torch._fused_adam_/_fused_adamw_ over lists (params, grads, exp_avgs, exp_avg_sqs) sharing one step
    counter: gl.sweep's stacked update (glassloop/sweeps/optim.py)."""
    kernel = torch._fused_adam_ if name == "adam" else torch._fused_adamw_
    params, grads, avgs, avg_sqs = tensors
    kernel(params, grads, avgs, avg_sqs, [], [step] * len(params), lr=lr, beta1=beta1, beta2=beta2,
           weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False)
