"""Canary for the private torch APIs glassloop uses (all in glassloop/core/torch_private.py), and the
public-API fallback: when the fast path does not apply, optimizer.step() runs and the numbers are the same."""

import inspect

import pytest
import torch
from torch import nn

from glassloop.core.torch_private import aten_kernel, fast_step, set_grad_mode

UPGRADE = ("torch changed a private API that glassloop/core/torch_private.py calls; update fast_step there "
           "(the public fallback, optimizer.step(), still works: set it to return optimizer.step)")


def test_the_private_names_fast_step_calls_still_exist_with_the_same_keywords():
    for name in ("_fused_adam_", "_fused_adamw_", "_foreach_add_"):
        assert hasattr(torch, name), f"torch.{name} is gone: {UPGRADE}"
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(2))], fused=True)
    assert isinstance(optimizer._optimizer_step_pre_hooks, dict), UPGRADE
    assert isinstance(optimizer._optimizer_step_post_hooks, dict), UPGRADE
    doc = torch._fused_adam_.__doc__ or str(getattr(torch._fused_adam_, "_schema", ""))
    if doc:
        for keyword in ("amsgrad", "beta1", "beta2", "weight_decay", "eps", "maximize", "grad_scale", "found_inf"):
            assert keyword in doc, f"torch._fused_adam_ lost its {keyword!r} argument: {UPGRADE}"


def test_the_bare_aten_kernel_and_grad_switch_do_what_the_public_calls_do():
    kernel = aten_kernel(torch.ops.aten.threshold_backward.grad_input)
    assert callable(kernel) and kernel is not torch.ops.aten.threshold_backward.grad_input, UPGRADE
    g, out = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 1.0, -1.0])
    assert kernel(g.clone(), out, 0, grad_input=torch.empty(3)).tolist() == [0.0, 2.0, 0.0]
    set_grad_mode(False)
    try:
        assert not torch.is_grad_enabled()
        assert not (nn.Parameter(torch.ones(1)) * 2).requires_grad
    finally:
        set_grad_mode(True)
    assert torch.is_grad_enabled()


def run(optimizer_class, fused, use_fast, steps=4, **options):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
    optimizer = optimizer_class(model.parameters(), lr=1e-2, fused=fused, **options)
    step = fast_step(optimizer, built_here=True) if use_fast else optimizer.step
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    for _ in range(steps):
        for p in model.parameters():
            p.grad = None
        nn.functional.mse_loss(model(x), y).backward()
        step()
    return [p.detach().clone() for p in model.parameters()], step, optimizer


@pytest.mark.parametrize("optimizer_class, options", [(torch.optim.Adam, {}), (torch.optim.AdamW,
                                                                           {"weight_decay": 0.1})])
def test_the_fast_kernel_call_is_bitwise_optimizer_step(optimizer_class, options):
    fast, step, optimizer = run(optimizer_class, True, True, **options)
    reference, _, _ = run(optimizer_class, True, False, **options)
    assert step != optimizer.step  # the fast path was taken
    assert all(torch.equal(a, b) for a, b in zip(fast, reference))


def test_anything_unusual_falls_back_to_the_public_step():
    _, step, optimizer = run(torch.optim.Adam, False, True)  # not fused: the public API
    assert step == optimizer.step
    _, step, optimizer = run(torch.optim.Adam, True, True, amsgrad=True)
    assert step == optimizer.step
    torch.manual_seed(0)
    user = torch.optim.Adam([nn.Parameter(torch.zeros(2))], fused=True)
    assert fast_step(user, built_here=False) == user.step  # a user's optimizer is never bypassed
    assert "optimizer.step()" in inspect.getsource(fast_step)  # hooks registered later still run
