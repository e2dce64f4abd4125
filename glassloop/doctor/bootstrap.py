"""Child side of `glassloop doctor --run`: install probes through torch's own global hooks, run the user's script
unchanged with `runpy`, stop it after N optimizer steps, and write what was seen as JSON.

Probes: a `TorchFunctionMode` sees every loss function, `Tensor.backward` and arithmetic on loss tensors; global
optimizer step pre/post hooks see gradients and parameter updates; a global module forward pre-hook sees models
run in eval mode while autograd records; tensor hooks on parameters see gradients added onto ones never cleared.
Each finding is placed at the user's own file:line (the innermost frame of the script on the stack).
Run as `python -m glassloop.doctor.bootstrap CONFIG.json SCRIPT [ARGS...]`.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import time
import traceback

import torch
import torch.nn.functional as F
import torch.optim.optimizer as optim_hooks
from torch import nn
from torch.overrides import TorchFunctionMode

from glassloop.doctor.runtime import broadcast_shape, finite

CLASS_LOSSES = {F.cross_entropy, F.nll_loss}
LOGIT_LOSSES = {F.binary_cross_entropy_with_logits}
VALUE_LOSSES = {F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss}
LOSSES = CLASS_LOSSES | LOGIT_LOSSES | VALUE_LOSSES | {F.binary_cross_entropy}
ARITHMETIC = {torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.__iadd__, torch.Tensor.add,
              torch.Tensor.add_, torch.add, torch.Tensor.__sub__, torch.Tensor.__rsub__, torch.Tensor.__mul__,
              torch.Tensor.__rmul__, torch.Tensor.__truediv__, torch.Tensor.__isub__}
MODE_LAYERS = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)


class StopRun(BaseException):
    """Raised from the optimizer post-hook after the step budget; not an Exception, so `except Exception` in the
    user's script does not swallow it."""


class TimeLimit(BaseException):
    """Raised by SIGALRM when the script runs past the time limit (counted from the script's start)."""


class Probes(TorchFunctionMode):
    def __init__(self, script: str, steps: int) -> None:
        super().__init__()
        self.script, self.budget = os.path.abspath(script), steps
        self.filenames = {script, self.script}   # runpy compiles with the path as given
        self.steps = 0
        self.findings: dict[tuple[str, int], str] = {}
        self.grad_seen: dict[int, bool] = {}
        self.changed: dict[int, bool] = {}
        self.names: dict[int, str] = {}
        self.stale: dict[int, torch.Tensor] = {}
        self.dirty: dict[int, int] = {}
        self.hooked: set[int] = set()
        self.before: dict[int, torch.Tensor] = {}
        self.backward_line = 0
        self.step_frames: list[tuple[object, int]] = []
        self.eval_frames: list[tuple[object, int]] | None = None
        self.eval_steps = 0
        self.trained_modules: dict[int, tuple[nn.Module, list[tuple[object, int]]]] = {}
        self.optimized: set[int] = set()
        self._eval_line = 0
        self.busy = False

    # ---- where ---------------------------------------------------------------------------------------------
    def frames(self) -> list[tuple[object, int]]:
        """(code, line) of the user's script frames, innermost first."""
        out, frame = [], sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename in self.filenames:
                out.append((frame.f_code, frame.f_lineno))
            frame = frame.f_back
        return out

    def line(self) -> int:
        found = self.frames()
        return found[0][1] if found else 0

    def at_step_function(self, frames: list[tuple[object, int]]) -> int:
        """The frame in the same function as the optimizer step (the training loop), else the innermost."""
        codes = {code for code, _ in self.step_frames}
        for code, line in frames:
            if code in codes:
                return line
        return frames[0][1] if frames else 0

    def add(self, code: str, line: int, detail: str) -> None:
        self.findings.setdefault((code, line), detail)

    # ---- torch functions ---------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch protocol
        kwargs = kwargs or {}
        if self.busy:
            return func(*args, **kwargs)
        if func in LOSSES:
            self.loss_inputs(func, args, kwargs)
        elif func is torch.Tensor.backward:
            self.before_backward(args, kwargs)
        elif func in ARITHMETIC:
            self.kept_graph(args)
        out = func(*args, **kwargs)
        if func in LOSSES and isinstance(out, torch.Tensor):
            out._glassloop_step = self.steps
            if out.is_floating_point() and not finite(out.detach()):
                self.add("GL207", self.line(), f"{func.__name__} returned {out.detach().flatten()[:1].item()}")
        elif func in ARITHMETIC and isinstance(out, torch.Tensor) and out.requires_grad:
            steps = [getattr(a, "_glassloop_step", None) for a in args if isinstance(a, torch.Tensor)]
            steps = [s for s in steps if s is not None]
            if steps:
                out._glassloop_step = min(steps)
        return out

    def loss_inputs(self, func, args: tuple, kwargs: dict) -> None:  # noqa: ANN001
        prediction = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if not isinstance(prediction, torch.Tensor) or not isinstance(target, torch.Tensor):
            return
        name = func.__name__
        made_by = type(prediction.grad_fn).__name__ if prediction.grad_fn is not None else ""
        values = prediction.detach()
        if func in CLASS_LOSSES and func is F.cross_entropy and values.dim() >= 2:
            if values.shape[1] == 1:
                self.add("GL206", self.line(), "cross_entropy on one output column: log_softmax of one value is 0")
            elif "Softmax" in made_by and "Log" not in made_by or (
                    values.min() >= 0 and torch.allclose(values.sum(1), torch.ones(()), atol=1e-3)):
                self.add("GL212", self.line(), f"rows sum to 1 ({made_by or 'probabilities'})")
        elif func in LOGIT_LOSSES and values.numel() > 1:
            if "Sigmoid" in made_by or (values.min() >= 0 and values.max() <= 1 and values.std() > 0):
                self.add("GL213", self.line(), f"inputs in [0, 1] ({made_by or 'probabilities'})")
        elif func in VALUE_LOSSES and not target.is_floating_point():
            self.add("GL206", self.line(), f"{name} got integer targets ({target.dtype})")
        if func in VALUE_LOSSES | LOGIT_LOSSES and prediction.shape != target.shape:
            shape = broadcast_shape(prediction.shape, target.shape)
            if shape is not None and (shape != prediction.shape or shape != target.shape):
                self.add("GL205", self.line(), f"prediction {list(prediction.shape)} vs target "
                                               f"{list(target.shape)} -> {list(shape)}")

    def before_backward(self, args: tuple, kwargs: dict) -> None:
        tensor = args[0]
        gradient = args[1] if len(args) > 1 else kwargs.get("gradient")
        self.backward_line = line = self.line()
        if not tensor.requires_grad:
            why = "autograd was off (torch.no_grad / inference_mode)" if not torch.is_grad_enabled() else \
                "no input requires grad: every parameter frozen, or the output detached"
            self.add("GL214", line, why)
        elif gradient is None and tensor.numel() != 1:
            self.add("GL204", line, f"backward() of a tensor of shape {list(tensor.shape)}")
        if tensor.is_floating_point() and not finite(tensor.detach()):
            self.add("GL207", line, "the back-propagated loss is NaN/Inf")

    def kept_graph(self, args: tuple) -> None:
        for arg in args:
            step = getattr(arg, "_glassloop_step", None) if isinstance(arg, torch.Tensor) else None
            if step is not None and step < self.steps and arg.requires_grad and arg.grad_fn is not None:
                self.add("GL215", self.line(), f"a loss tensor from step {step + 1} is still added to at step "
                                               f"{self.steps + 1}")
                arg._glassloop_step = None
                return

    # ---- global hooks ------------------------------------------------------------------------------------
    def forward_pre(self, module: nn.Module, inputs: tuple) -> None:
        if self.busy or not torch.is_grad_enabled():
            return
        if id(module) not in self.trained_modules and not self._has_parent_seen(module):
            frames = self.frames()
            if frames:   # called from the user's script: a model (not a layer inside one)
                self.trained_modules[id(module)] = (module, frames)
        if not module.training and isinstance(module, MODE_LAYERS) and self.eval_frames is None:
            self.eval_frames = self.frames()

    def _has_parent_seen(self, module: nn.Module) -> bool:
        return any(module is not m and any(module is c for c in m.modules()) for m, _ in self.trained_modules.values())

    def step_pre(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        self.busy = True
        try:
            if not self.step_frames:
                self.step_frames = self.frames()
            if self.eval_frames:
                self.eval_steps += 1
                self._eval_line = self._eval_line or self.at_step_function(self.eval_frames)
            for group in optimizer.param_groups:
                for p in group["params"]:
                    key = id(p)
                    self.optimized.add(key)
                    self.grad_seen[key] = self.grad_seen.get(key, False) or p.grad is not None
                    if p.grad is not None:
                        if not finite(p.grad):
                            self.add("GL207", self.backward_line or self.line(), "gradients are NaN/Inf")
                        elif bool(p.grad.detach().any()):   # an exactly-zero gradient may rightly move nothing
                            self.before[key] = p.detach().clone()
                    if key in self.dirty:
                        self.add("GL201", self.dirty.pop(key), "gradients from the previous step were still there")
        finally:
            self.busy = False

    def step_post(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        self.busy = True
        try:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    key = id(p)
                    if key in self.before:
                        self.changed[key] = self.changed.get(key, False) or not torch.equal(self.before.pop(key), p)
                    if p.grad is not None:
                        self.stale[key] = p.grad
                    if key not in self.hooked and p.requires_grad:
                        self.hooked.add(key)
                        p.register_hook(self._grad_hook(p))
            self.eval_frames = None
        finally:
            self.busy = False
        self.steps += 1
        if self.steps >= self.budget:
            raise StopRun

    def _grad_hook(self, param: torch.Tensor):  # noqa: ANN202 - closure for Tensor.register_hook
        key = id(param)

        def hook(grad: torch.Tensor) -> None:
            old = param.grad
            if old is not None and old is self.stale.get(key) and bool(old.detach().any()):
                self.dirty[key] = self.backward_line
            else:
                self.dirty.pop(key, None)
        return hook

    # ---- the end -----------------------------------------------------------------------------------------
    def finish(self) -> None:
        """Findings that need the whole run: eval-mode training, params never updated or never given a grad."""
        if self.eval_steps and self.eval_steps >= max(1, self.steps // 2):
            self.add("GL209", self._eval_line, f"dropout/batch-norm ran in eval mode in {self.eval_steps} of "
                                               f"{self.steps} steps")
        if not self.steps:
            return
        names = self._parameter_names()
        never = [names.get(k, "?") for k, seen in self.grad_seen.items() if not seen]
        if never and len(never) < len(self.grad_seen):
            self.add("GL202", self.at_step_function(self.step_frames), ", ".join(never[:5]))
        unchanged = [names.get(k, "?") for k, moved in self.changed.items() if not moved]
        if unchanged:
            self.add("GL203", self.at_step_function(self.step_frames), "unchanged by step(): " + ", ".join(unchanged[:5]))
        for module, frames in self.trained_modules.values():
            params = [p for p in module.parameters() if p.requires_grad]
            if params and not any(id(p) in self.optimized for p in params) and self._is_top(module):
                self.add("GL203", self._made_line(module, frames),
                         f"{type(module).__name__} trains in the forward pass but no optimizer holds its parameters")

    def _is_top(self, module: nn.Module) -> bool:
        return not self._has_parent_seen(module)

    def _made_line(self, module: nn.Module, frames: list[tuple[object, int]]) -> int:
        made = getattr(module, "_glassloop_made", None)
        return self.at_step_function(made) if made else self.at_step_function(frames)

    def _parameter_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for module, _ in self.trained_modules.values():
            for name, p in module.named_parameters():
                names.setdefault(id(p), f"{type(module).__name__}.{name}")
        return names

    def report(self, ending: dict) -> dict:
        return {"steps": self.steps, "ending": ending,
                "findings": [{"code": c, "line": ln, "detail": d} for (c, ln), d in self.findings.items()]}


def _made(module: nn.Module, name: str, submodule: nn.Module | None) -> None:
    """Module registration hook: remember where in the user's script each model was built (first time)."""
    if PROBES is not None and not hasattr(module, "_glassloop_made"):
        frames = PROBES.frames()
        if frames:
            module._glassloop_made = frames


PROBES: Probes | None = None


def _ending(kind: str, message: str = "", line: int = 0) -> dict:
    return {"kind": kind, "message": message, "line": line}


def _crash(probes: Probes, error: BaseException) -> dict:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.abspath(f.filename) == probes.script]
    line = frames[-1].lineno if frames else 0
    return _ending("crash", f"{type(error).__name__}: {error}".strip()[:300], line or 0)


def run(config_path: str, script: str, args: list[str]) -> int:
    global PROBES
    config = json.loads(open(config_path, encoding="utf-8").read())
    probes = PROBES = Probes(script, int(config["steps"]))
    out_path = config["report"]
    written = []

    def write(ending: dict) -> None:
        if not written:
            written.append(True)
            probes.busy = True
            try:
                probes.finish()
            finally:
                with open(out_path, "w", encoding="utf-8") as handle:
                    json.dump(probes.report(ending), handle)

    def on_term(signum: int, frame: object) -> None:
        write(_ending("timeout", f"still running after {config['timeout']:g} s", probes.line()))
        os._exit(0)

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeLimit

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGALRM, on_alarm)
    handles = [optim_hooks.register_optimizer_step_pre_hook(probes.step_pre),
               optim_hooks.register_optimizer_step_post_hook(probes.step_post),
               nn.modules.module.register_module_forward_pre_hook(probes.forward_pre),
               nn.modules.module.register_module_module_registration_hook(_made)]
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, float(config["timeout"]))
    try:
        with probes:
            runpy.run_path(script, run_name="__main__")
        ending = _ending("finished")
    except StopRun:
        ending = _ending("budget")
    except TimeLimit:
        ending = _ending("timeout", f"still running after {config['timeout']:g} s", probes.line())
    except SystemExit as error:
        code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
        ending = _ending("exit", str(code))
    except BaseException as error:  # noqa: BLE001 - the user's script may raise anything; it is the report
        ending = _crash(probes, error)
    signal.setitimer(signal.ITIMER_REAL, 0)
    ending["seconds"] = round(time.perf_counter() - start, 3)
    for handle in handles:
        handle.remove()
    write(ending)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2], sys.argv[3:]))
