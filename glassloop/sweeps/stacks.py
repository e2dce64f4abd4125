"""K copies of one architecture as one `[K, P]` weight tensor, and the per-configuration loss.

- `SequentialStack`: an `nn.Sequential` of Linear/ReLU/Tanh/Sigmoid/Identity: one `baddbmm` per Linear
  (`[K, B, in] x [K, in, out]`) and a hand-written backward, no autograd engine at all.
- `FunctionalStack`: any other architecture, through `torch.func.functional_call` under `vmap` with autograd.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from glassloop.core.fused import BACKWARD_IN_PLACE as ACTIVATION_BACKWARD_IN_PLACE
from glassloop.core.fused import FORWARD as ACTIVATION_FORWARD
from glassloop.core.fused import FORWARD_IN_PLACE as ACTIVATION_IN_PLACE
from glassloop.core.fused import plain_sequential
from glassloop.errors import ConfigError

LOOP_MACS = 1 << 22  # multiply-adds of one configuration's largest GEMM from which a per-configuration loop wins


def make_stack(models: list[nn.Module], method: str, device: torch.device) -> Any:
    if method in ("auto", "bmm") and SequentialStack.supports(models[0]):
        return SequentialStack(models, device)
    if method == "bmm":
        raise ConfigError(f"method='bmm' needs an nn.Sequential of Linear/ReLU/Tanh/Sigmoid layers; got "
                          f"{type(models[0]).__name__}; use method='auto' (vmap for other architectures)")
    return FunctionalStack(models, device)


class SequentialStack:
    """K copies of a Linear/activation `nn.Sequential` as one `[K, P]` weight tensor and a hand-written
    forward/backward: `baddbmm` per Linear, no autograd graph, gradients written straight into `[K, P]`."""

    method = "bmm"

    @staticmethod
    def supports(model: nn.Module) -> bool:
        if not plain_sequential(model):
            return False
        return not list(model.buffers()) and all(p.dtype == torch.float32 for p in model.parameters())

    def __init__(self, models: list[nn.Module], device: torch.device) -> None:
        self.template = copy.deepcopy(models[0]).cpu()
        self.k = len(models)
        self.layers: list[tuple[str, Any]] = []  # ("linear", (weight_slice, bias_slice, in, out)) | ("act", kind)
        offset, slices = 0, []
        for module in models[0]:
            if isinstance(module, nn.Linear):
                w = (offset, offset + module.in_features * module.out_features)
                offset = w[1]
                b = None
                if module.bias is not None:
                    b = (offset, offset + module.out_features)
                    offset = b[1]
                self.layers.append(("linear", (w, b, module.in_features, module.out_features)))
                slices.append((w, b))
            else:
                self.layers.append(("act", type(module)))
        self.size = offset
        rows = []
        for model in models:  # weights stored transposed, [in, out], so the forward is x @ W
            parts = []
            for module in model:
                if isinstance(module, nn.Linear):
                    parts.append(module.weight.detach().t().reshape(-1))
                    if module.bias is not None:
                        parts.append(module.bias.detach().reshape(-1))
            rows.append(torch.cat(parts))
        self.flat = torch.stack(rows).to(device)  # [K, P]: what the optimizer updates
        self.grad = torch.zeros_like(self.flat)
        self.weights = self._views(self.flat)
        self.grads = self._views(self.grad)
        # The training step's activations and their gradients, allocated once per batch size: at K x B x width
        # they are megabytes, and fresh ones each step cost page faults (the glibc allocator maps and unmaps
        # blocks that large) that took a third of `wide`'s step.
        self.buffers: dict[int, tuple[list[torch.Tensor], list[torch.Tensor | None]]] = {}
        self.largest_layer = max((spec[2] * spec[3] for kind, spec in self.layers if kind == "linear"), default=0)

    def _views(self, flat: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        views = []
        for kind, spec in self.layers:
            if kind == "linear":
                (w0, w1), b, fan_in, fan_out = spec
                weight = flat[:, w0:w1].view(self.k, fan_in, fan_out)
                bias = flat[:, b[0]:b[1]].view(self.k, 1, fan_out) if b else None
                views.append((weight, bias))
        return views

    def forward(self, inputs: torch.Tensor, keep: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """inputs [K, B, in] -> outputs [K, B, out]; with `keep`, the tensors the backward needs. The activations
        live in this batch size's buffers: valid until the next forward with as many rows."""
        saved: list[torch.Tensor] = []
        outs = self.step_buffers(inputs)[0]
        h, index, buffered = inputs, 0, False
        for kind, spec in self.layers:
            if kind == "linear":
                weight, bias = self.weights[index]
                out = outs[index]
                index += 1
                keep and saved.append(h)
                if self.looped(h.shape[1]):
                    for i in range(self.k):  # contiguous per-configuration slabs: faster than bmm at these sizes
                        torch.mm(h[i], weight[i], out=out[i]) if bias is None else torch.addmm(
                            bias[i], h[i], weight[i], out=out[i])
                elif bias is None:
                    torch.bmm(h, weight, out=out)
                else:
                    torch.baddbmm(bias, h, weight, out=out)
                h = out
                buffered = True
            else:
                h = ACTIVATION_IN_PLACE[spec](h) if buffered else ACTIVATION_FORWARD[spec](h)
                buffered = False  # a second activation must not overwrite the output this one's backward needs
                keep and saved.append(h)
        return h, saved

    def step_buffers(self, inputs: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """Per Linear: its output [K, B, out] and the gradient of its input [K, B, in] (None for the first)."""
        rows = inputs.shape[1]
        if rows not in self.buffers:
            specs = [spec for kind, spec in self.layers if kind == "linear"]
            like = dict(dtype=self.flat.dtype, device=self.flat.device)
            outs = [torch.empty(self.k, rows, fan_out, **like) for _, _, _, fan_out in specs]
            grads = [None] + [torch.empty(self.k, rows, fan_in, **like) for _, _, fan_in, _ in specs[1:]]
            self.buffers[rows] = (outs, grads)
        return self.buffers[rows]

    def forward_shared(self, inputs: torch.Tensor) -> torch.Tensor:
        """The same inputs [N, in] through all K models (validation)."""
        return self.forward(inputs.expand(self.k, *inputs.shape))[0]

    def looped(self, rows: int) -> bool:
        """One `mm` per configuration instead of one batched GEMM: for large matrices MKL's batched GEMM ran ~20%
        slower than K plain ones (`wide`, K=32, 2 threads), while for small ones the K calls cost more than bmm."""
        return rows * self.largest_layer >= LOOP_MACS

    def chunk_rows(self) -> int:
        """Validation rows per forward: each activation buffer at most 4M numbers (16 MB in float32)."""
        widest = max((spec[3] for kind, spec in self.layers if kind == "linear"), default=1)
        return max(64, (1 << 22) // (self.k * widest))

    def backward(self, grad_out: torch.Tensor, saved: list[torch.Tensor]) -> torch.Tensor:
        """Fill `self.grad` [K, P] from dLoss/dOutputs; each config's block is its own loss's gradient."""
        input_grads = self.step_buffers(saved[0])[1]
        looped = self.looped(saved[0].shape[1])
        g, index, pieces = grad_out, len(self.weights), []
        for position in range(len(self.layers) - 1, -1, -1):
            kind, spec = self.layers[position]
            kept = saved[position]
            if kind == "act":  # g is ours (the loss's gradient or a step buffer): overwrite it
                g = ACTIVATION_BACKWARD_IN_PLACE[spec](g, kept)
                continue
            index -= 1
            weight, bias = self.weights[index]
            if looped:  # straight into [K, P]: each configuration's block of it is contiguous
                weight_grad, bias_grad = self.grads[index]
                if bias is not None:
                    torch.sum(g, 1, keepdim=True, out=bias_grad)  # db
                for i in range(self.k):
                    torch.mm(kept[i].t(), g[i], out=weight_grad[i])  # dW = h^T g
                if position > 0:
                    for i in range(self.k):
                        torch.mm(g[i], weight[i].t(), out=input_grads[index][i])  # dh = g W^T
                    g = input_grads[index]
                continue
            if bias is not None:
                pieces.append(g.sum(1))  # db, [K, out]
            pieces.append(torch.bmm(kept.transpose(1, 2), g).view(self.k, -1))  # dW = h^T g, per configuration
            if position > 0:
                g = torch.bmm(g, weight.transpose(1, 2), out=input_grads[index])  # dh = g W^T
        if looped:
            return self.grad
        # One copy into [K, P]: bmm(out=<strided view>) would leave MKL's batched GEMM for a per-matrix loop.
        return torch.cat(pieces[::-1], dim=1, out=self.grad)

    def unstack(self, row: torch.Tensor) -> nn.Module:
        model = copy.deepcopy(self.template)
        with torch.no_grad():
            for module, (kind, spec) in zip(model, self.layers):
                if kind == "linear":
                    (w0, w1), b, fan_in, fan_out = spec
                    module.weight.copy_(row[w0:w1].view(fan_in, fan_out).t())
                    if b:
                        module.bias.copy_(row[b[0]:b[1]])
        return model

    def train(self, mode: bool = True) -> None:
        pass  # no dropout or batch norm on this path


class FunctionalStack:
    """Any architecture: `torch.func.functional_call` under `vmap` over a `[K, P]` leaf (autograd backward)."""

    method = "vmap"

    def __init__(self, models: list[nn.Module], device: torch.device) -> None:
        from torch.func import functional_call, stack_module_state

        self.k = len(models)
        self.names, self.shapes, self.bounds = [], [], []
        offset = 0
        for name, p in models[0].named_parameters():
            self.names.append(name)
            self.shapes.append(tuple(p.shape))
            self.bounds.append((offset, offset + p.numel()))
            offset += p.numel()
        self.size = offset
        params, buffers = stack_module_state(models)
        self.flat = torch.cat([params[n].detach().reshape(self.k, -1) for n in self.names], 1).to(device)
        self.flat.requires_grad_(True)
        self.buffers = {n: b.to(device) for n, b in buffers.items()}
        self.grad = torch.zeros_like(self.flat)
        self.flat.grad = self.grad  # autograd accumulates into this same buffer every step
        self.cpu_template = copy.deepcopy(models[0]).cpu()
        self.training = True

        def call(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor):
            return functional_call(self.template_for_call, (params, buffers), (x,))

        self.template_for_call = copy.deepcopy(models[0]).to(device)
        self.call = call

    def _params(self) -> dict[str, torch.Tensor]:
        return {n: self.flat[:, a:b].view(self.k, *s) for n, (a, b), s in zip(self.names, self.bounds, self.shapes)}

    def train(self, mode: bool = True) -> None:
        self.template_for_call.train(mode)

    def _run(self, inputs: torch.Tensor, in_dims: Any) -> torch.Tensor:
        try:
            return torch.vmap(self.call, in_dims=(0, 0, in_dims), randomness="different")(
                self._params(), self.buffers, inputs)
        except RuntimeError as error:
            raise ConfigError(f"this model cannot be stacked with torch.func.vmap ({str(error).splitlines()[0]}); "
                              "layers that update buffers in training (BatchNorm) or use data-dependent control "
                              "flow are not supported by sweeps") from None

    def forward(self, inputs: torch.Tensor, keep: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self._run(inputs, 0), []

    def forward_shared(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._run(inputs, None)

    def chunk_rows(self) -> int:
        return 8192  # validation rows per forward, as gl.evaluate

    def unstack(self, row: torch.Tensor) -> nn.Module:
        model = copy.deepcopy(self.cpu_template)
        with torch.no_grad():
            for p, (a, b) in zip(model.parameters(), self.bounds):
                p.copy_(row[a:b].view_as(p))
        return model


class StackedLoss:
    """A loss per configuration, [K], from outputs [K, B, ...] and targets [K, B, ...]."""

    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn
        self.is_mse = type(loss_fn) is nn.MSELoss and loss_fn.reduction == "mean"
        self.unreduced = None
        # Built-in losses with reduction='none' on [K*B, ...] then a mean per configuration equal their 'mean';
        # class weights make 'mean' a weighted mean, so those fall back to one call per configuration.
        if isinstance(loss_fn, nn.modules.loss._Loss) and getattr(loss_fn, "reduction", None) == "mean" \
                and getattr(loss_fn, "weight", None) is None:
            self.unreduced = copy.copy(loss_fn)
            self.unreduced.reduction = "none"

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        k = outputs.shape[0]
        if self.is_mse:
            return (outputs - targets).square().reshape(k, -1).mean(1)
        if self.unreduced is not None:
            values = self.unreduced(outputs.reshape(-1, *outputs.shape[2:]), targets.reshape(-1, *targets.shape[2:]))
            return values.reshape(k, -1).mean(1)
        return torch.stack([self.loss_fn(outputs[i], targets[i]) for i in range(k)])

    def value_and_grad(self, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-config losses [K] and d(sum of them)/d outputs: each block is its own config's gradient."""
        if self.is_mse:  # the default loss, by hand: 4 ops instead of a small autograd graph
            diff = outputs - targets
            per_config = diff.square().reshape(diff.shape[0], -1).mean(1)
            return per_config, diff.mul_(2.0 / (diff.numel() // diff.shape[0]))
        with torch.enable_grad():
            leaf = outputs.detach().requires_grad_(True)
            per_config = self(leaf, targets)
            (grad,) = torch.autograd.grad(per_config.sum(), leaf)
        return per_config.detach(), grad
