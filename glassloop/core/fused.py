"""A fused step for the lessons' model family: an `nn.Sequential` of `Linear` layers and element-wise
activations (ReLU, Tanh, Sigmoid, Identity) trained with a built-in mean-reduced loss (MSE, cross-entropy).

It is an optimisation of the same step, not another algorithm: the forward pass is one `addmm` per Linear (what
`F.linear` runs), and the backward pass calls the very derivative kernels autograd would call
(`mse_loss_backward`, `threshold_backward`, `mm` with the same operand order), so the gradients equal autograd's
(tests compare them to 1e-6 relative on random shapes and activations; whole fits are bitwise on the tested
seeds) while the graph bookkeeping of autograd's engine is skipped. The heartbeat uses it only when nothing
needs autograd: no per-batch callbacks that read the step, no probes, no custom `compute_loss`, no accumulation
or mixed precision, float32 parameters, and `fused_step` not turned off.
Learners read the lesson's `loss.backward()` path; `History.step_path` and `show_loop()` say which one ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from glassloop.core.torch_private import aten_kernel, set_grad_mode

MEAN = 1  # torch's enum value for reduction="mean" in the aten backward kernels

FORWARD: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid, nn.Identity: lambda h: h,
}
# The same kernels writing over their input: a Linear's fresh output (the backward needs only the activation's
# output, never its input), and an incoming gradient this step made (the derivatives autograd would call).
# Bitwise the out-of-place values, one allocation less.
FORWARD_IN_PLACE: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: torch.relu_, nn.Tanh: torch.tanh_, nn.Sigmoid: torch.sigmoid_, nn.Identity: lambda h: h,
}
_threshold_backward = aten_kernel(torch.ops.aten.threshold_backward.grad_input)
_tanh_backward = aten_kernel(torch.ops.aten.tanh_backward.grad_input)
_sigmoid_backward = aten_kernel(torch.ops.aten.sigmoid_backward.grad_input)
BACKWARD_IN_PLACE: dict[type, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    nn.ReLU: lambda g, out: _threshold_backward(g, out, 0, grad_input=g),
    nn.Tanh: lambda g, out: _tanh_backward(g, out, grad_input=g),
    nn.Sigmoid: lambda g, out: _sigmoid_backward(g, out, grad_input=g),
    nn.Identity: lambda g, out: g,
}


def loss_kind(loss_fn: Any) -> str | None:
    """The built-in losses the fused step knows, in their plain form (mean reduction, no weights)."""
    if type(loss_fn) is nn.MSELoss and loss_fn.reduction == "mean":
        return "mse"
    if (type(loss_fn) is nn.CrossEntropyLoss and loss_fn.reduction == "mean" and loss_fn.weight is None
            and loss_fn.label_smoothing == 0.0):
        return "cross_entropy"
    return None


def supports(model: nn.Module, loss_fn: Any) -> bool:
    if loss_kind(loss_fn) is None or not plain_sequential(model) or type(model[0]) is not nn.Linear:
        return False
    if model._forward_hooks or model._forward_pre_hooks or any(m._forward_hooks or m._forward_pre_hooks
                                                              for m in model):
        return False  # someone watches the forward pass: give them the real one
    if watched_globally():
        return False
    parameters = list(model.parameters())
    if any(p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None) for p in parameters):
        return False  # gradient hooks on the parameters run only inside autograd
    return bool(parameters) and all(p.dtype == torch.float32 and p.requires_grad for p in parameters)


def plain_sequential(model: nn.Module) -> bool:
    """Linear layers and the known activations in a row, nothing else: exact types (a subclass may compute
    something else in its own forward), and the container's own forward is nn.Sequential's."""
    if not (isinstance(model, nn.Sequential) and len(model) > 0 and type(model).forward is nn.Sequential.forward
            and type(model).__call__ is nn.Module.__call__ and all(type(m) in (nn.Linear, *FORWARD) for m in model)):
        return False
    # A layer used twice, or a weight tied between layers: autograd adds up its gradients; a hand-written backward
    # that writes each layer's gradient would keep only one of them.
    tensors = [id(p) for m in model for p in m.parameters()]
    linears = [id(m) for m in model if type(m) is nn.Linear]
    return len(set(tensors)) == len(tensors) and len(set(linears)) == len(linears)


def watched_globally() -> bool:
    """Global module hooks or a TorchFunctionMode (the doctor's --run probes, profilers) see only real calls."""
    from torch.nn.modules import module as module_hooks

    return bool(module_hooks._global_forward_hooks or module_hooks._global_forward_pre_hooks
                or module_hooks._global_backward_hooks or torch._C._is_torch_function_mode_enabled())


class Workspace:
    """The step's own tensors for one batch size, made once and reused every step: each Linear's output (the
    first activation after it runs in place there), the gradient at that output with its transpose as a view, and
    the MSE's residual and squares. Written with `out=`, a buffer that starts where a fresh tensor would (the
    same alignment) gets bitwise what a fresh tensor gets, and the step allocates almost nothing. A smaller batch
    (an epoch's last) uses the first rows of the same buffers: no second set of activations in memory."""

    def __init__(self, outputs: list[torch.Tensor], grads: list[torch.Tensor], residual: torch.Tensor,
                 squares: torch.Tensor) -> None:
        self.rows, self.outputs, self.grads = outputs[0].shape[0], outputs, grads
        self.grads_t = [g.t() for g in grads]
        self.residual, self.squares = residual, squares
        device, dtype = residual.device, residual.dtype
        count = residual.numel()  # mse_loss's mean divides by it; its backward scales by 2 / count
        self.count = torch.tensor(float(count), dtype=dtype, device=device)
        self.scale = torch.tensor(2.0 / count if count else float("nan"), dtype=dtype, device=device)
        self.on_cpu = device.type == "cpu"
        self.one = torch.ones((), dtype=dtype, device=device)
        # A GEMM's out= rounds exactly as into a new tensor at an address a new tensor could have: 64 bytes, the CPU
        # allocator's alignment (512, the CUDA caching allocator's, elsewhere). Weight gradients elsewhere are copied.
        self.alignment = 64 if device.type == "cpu" else 512

    @classmethod
    def allocate(cls, weights: list[torch.Tensor], rows: int, device: torch.device) -> Workspace:
        outputs = [torch.empty(rows, w.shape[0], dtype=w.dtype, device=device) for w in weights]
        return cls(outputs, [torch.empty_like(out) for out in outputs], torch.empty_like(outputs[-1]),
                   torch.empty_like(outputs[-1]))

    def first(self, rows: int) -> Workspace:
        """The same buffers cut to their first `rows` rows (contiguous, starting where they start)."""
        return Workspace([out[:rows] for out in self.outputs], [g[:rows] for g in self.grads], self.residual[:rows],
                         self.squares[:rows])


class FusedStep:
    """`loss = step(inputs, targets)`: forward, loss and backward by hand; every parameter's `.grad` is set.

    The plan is read from the modules once, as blocks: a Linear's weight and bias, then the (forward, derivative)
    of each activation after it. The per-step loop touches no `nn.Module` attribute. The parameters are the
    modules' own objects, so a new storage behind them (glassloop/core/flat.py, a restore) is seen at once. A
    weight gradient that is a view of the flat buffer at an aligned address is written by the GEMM itself;
    elsewhere it is copied in.
    """

    def __init__(self, model: nn.Sequential, loss_fn: Any, guard: Any = None) -> None:
        self.blocks: list[tuple[torch.Tensor, torch.Tensor | None, list[tuple[Any, Any]]]] = []
        for module in model:  # (supports(): the first module is a Linear)
            if type(module) is nn.Linear:
                self.blocks.append((module.weight, module.bias, []))
                continue
            activations = self.blocks[-1][2]
            # The first activation writes over its Linear's fresh output; a second one keeps the first's output.
            forward = FORWARD_IN_PLACE if not activations else FORWARD
            activations.append((forward[type(module)], BACKWARD_IN_PLACE[type(module)]))
        self.weights = [weight for weight, _, _ in self.blocks]
        self.kind = loss_kind(loss_fn)
        self.guard = guard  # the run's ShapeGuard: the first batch gets the same checks as the autograd path
        self.pointers: list[int] = []  # the weights' data_ptr when `weights_t` was made
        self.weights_t: list[torch.Tensor] = []
        self.workspaces: dict[Any, Workspace] = {}  # None: the largest batch's; (rows, device): views of it

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        enabled = torch.is_grad_enabled()
        set_grad_mode(False)  # torch.no_grad() for the step, without a context object per call
        try:
            return self.step(inputs, targets)
        finally:
            set_grad_mode(enabled)

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        space, blocks = self.workspace(inputs), self.blocks
        block_inputs: list[torch.Tensor] = []  # kept for the weight gradients
        activation_outputs: list[torch.Tensor] = []  # kept for the activations' derivatives
        h = inputs
        for (_, bias, activations), weight_t, out in zip(blocks, self.transposed(), space.outputs):
            block_inputs.append(h)
            h = torch.addmm(bias, h, weight_t, out=out) if bias is not None \
                else torch.mm(h, weight_t, out=out)  # what F.linear runs for nn.Linear
            for forward, _ in activations:
                h = forward(h)
                activation_outputs.append(h)
        if self.guard is not None and not self.guard.checked:
            self.guard(h, targets)  # shapes, dtypes, a scalar loss: the same one-line errors as loss.backward()'s path
        loss, g = self.loss_and_grad(h, targets, space)
        for index in range(len(blocks) - 1, -1, -1):
            weight, bias, activations = blocks[index]
            for _, derivative in reversed(activations):
                g = derivative(g, activation_outputs.pop())  # in place on a gradient this step made
            saved = block_inputs[index]
            g_t = space.grads_t[index] if g is space.grads[index] else g.t()
            grad = weight.grad
            if grad is None:  # per-tensor gradients: new tensors, as autograd makes them
                weight.grad = g_t.mm(saved)  # autograd's mm_mat2_backward for weight.t()
                if bias is not None:
                    bias.grad = g.sum(0)
            else:  # views of glassloop/core/flat.py's buffer
                if grad.data_ptr() % space.alignment == 0 and grad.is_contiguous():
                    torch.mm(g_t, saved, out=grad)
                else:  # BLAS writing into a view at an unaligned address rounded differently on ~half the seeds
                    grad.copy_(g_t.mm(saved))
                if bias is not None:
                    torch.sum(g, 0, out=bias.grad)
            if index:
                g = torch.mm(g, weight, out=space.grads[index - 1])  # autograd's mm_mat1_backward
        return loss

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The model's outputs for rows x features under no_grad (validation): the step's forward without its
        workspace and kept tensors (a shared version with optional ones measured ~10% slower per step), new
        tensors the caller keeps, none of the module calls."""
        h = inputs
        for (_, bias, activations), weight_t in zip(self.blocks, self.transposed()):
            h = torch.addmm(bias, h, weight_t) if bias is not None else h.mm(weight_t)
            for forward, _ in activations:
                h = forward(h)
        return h

    def workspace(self, inputs: torch.Tensor) -> Workspace:
        key = (inputs.shape[0], inputs.device)
        space = self.workspaces.get(key)
        if space is None:
            rows, base = inputs.shape[0], self.workspaces.get(None)
            if base is None or base.rows < rows or base.residual.device != inputs.device or len(self.workspaces) > 64:
                largest = rows if base is None or base.residual.device != inputs.device else max(rows, base.rows)
                self.workspaces = {None: Workspace.allocate(self.weights, largest, inputs.device)}
                base = self.workspaces[None]
            space = self.workspaces[key] = base if base.rows == rows else base.first(rows)
        return space

    def transposed(self) -> list[torch.Tensor]:
        """Each `weight.t()`, made again only when a weight's storage moved (the flat buffer, a restore)."""
        pointers = [weight.data_ptr() for weight in self.weights]
        if pointers != self.pointers:
            self.pointers, self.weights_t = pointers, [weight.t() for weight in self.weights]
        return self.weights_t

    def loss_and_grad(self, outputs: torch.Tensor, targets: torch.Tensor, space: Workspace
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss (a new tensor: the caller may keep it) and its gradient at the outputs."""
        if self.kind == "mse":
            if outputs.shape == targets.shape and outputs.dtype == targets.dtype:
                # mse_loss's own arithmetic, each step with out=: the mean of (outputs - targets)^2 is a sum, then a
                # division by the count; the gradient 2 / count * (outputs - targets). Bitwise its two kernels.
                # (torch's mean is that sum and division on a CPU only; elsewhere it multiplies by 1 / count.)
                residual = torch.sub(outputs, targets, out=space.residual)
                squares = torch.mul(residual, residual, out=space.squares)
                loss = torch.sum(squares).div_(space.count) if space.on_cpu else torch.mean(squares)
                return loss, torch.mul(residual, space.scale, out=space.grads[-1])
            # broadcasting or mixed dtypes: F.mse_loss's own warning and rules
            return (nn.functional.mse_loss(outputs, targets),
                    torch.ops.aten.mse_loss_backward(space.one, outputs, targets, MEAN))
        log_probabilities = torch.log_softmax(outputs, 1)
        loss, total_weight = torch.ops.aten.nll_loss_forward(log_probabilities, targets, None, MEAN, -100)
        grad = torch.ops.aten.nll_loss_backward(space.one, log_probabilities, targets, None, MEAN, -100, total_weight)
        return loss, torch.ops.aten._log_softmax_backward_data(grad, log_probabilities, 1, outputs.dtype)
