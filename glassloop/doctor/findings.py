"""Findings: what the doctor reports, and the rule table that gives each code its severity, why and fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    title: str
    why: str
    fix: str


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    code: str
    severity: str
    message: str
    fix: str

    def render(self) -> str:
        """Linter style: `train.py:42: GL104 <what> <why> Fix: <fix>`."""
        return f"{self.path}:{self.line}: {self.code} [{self.severity}] {self.message} Fix: {self.fix}"

    def to_dict(self) -> dict:
        return asdict(self)


def _r(code: str, severity: str, title: str, why: str, fix: str) -> Rule:
    return Rule(code, severity, title, why, fix)


RULES: dict[str, Rule] = {r.code: r for r in [
    _r("GL100", "error", "the script does not parse",
       "nothing else can be checked until it is valid Python.", "fix the syntax error at this line."),
    _r("GL101", "error", "gradients are never cleared in this training loop",
       "backward() adds to .grad, so every step uses the sum of all previous gradients.",
       "call optimizer.zero_grad() before loss.backward() in every iteration."),
    _r("GL102", "error", "zero_grad() between backward() and step() wipes the gradients just computed",
       "step() then sees zero (or None) gradients and the model never learns.",
       "move zero_grad() before the forward pass or after step()."),
    _r("GL103", "error", "optimizer.step() runs before loss.backward() in the iteration",
       "each step applies the previous batch's gradients (or none on the first step).",
       "order the loop zero_grad -> forward -> loss -> backward -> step."),
    _r("GL104", "error", "gradient clipping is in the wrong place",
       "clipping after step() has already applied the exploding gradient; before backward() there is nothing to clip.",
       "clip between loss.backward() and optimizer.step()."),
    _r("GL105", "warning", "the LR scheduler steps before the optimizer",
       "the first learning-rate value of the schedule is skipped and PyTorch warns about it.",
       "call scheduler.step() after optimizer.step()."),
    _r("GL106", "warning", "an epoch-based LR scheduler is stepped every batch",
       "the schedule runs len(loader) times too fast, the LR collapses after a few epochs.",
       "call scheduler.step() once per epoch, after the batch loop (or size the schedule in batches)."),
    _r("GL107", "warning", "evaluation runs without model.eval()",
       "dropout stays active and batch-norm uses and updates batch statistics, so the metrics are wrong.",
       "call model.eval() before evaluating (and model.train() before training again)."),
    _r("GL108", "warning", "evaluation runs with autograd recording",
       "every forward pass builds a graph: memory and time are wasted and tensors keep their history.",
       "wrap evaluation in `with torch.no_grad():` or `with torch.inference_mode():`."),
    _r("GL109", "error", "model.train() is never restored after evaluation inside the epoch loop",
       "from the second epoch on the model trains in eval mode: no dropout, frozen batch-norm statistics.",
       "call model.train() at the start of every epoch (or right after evaluating)."),
    _r("GL110", "warning", "the loss tensor is accumulated instead of its value",
       "each addition keeps the whole autograd graph of the batch alive: memory grows every step.",
       "accumulate loss.item() (or loss.detach())."),
    _r("GL111", "error", "backward() on an unreduced loss (reduction='none')",
       "backward() of a non-scalar tensor fails or needs an explicit gradient; the batch is never averaged.",
       "reduce first: loss.mean() (or loss.sum()), or use the default reduction."),
    _r("GL112", "error", "softmax/log_softmax output is fed to a loss that applies log_softmax itself",
       "CrossEntropyLoss expects raw logits; a second softmax flattens the gradients and training stalls.",
       "pass the raw logits to CrossEntropyLoss (drop the softmax), or use log_softmax + NLLLoss."),
    _r("GL113", "warning", "the loss does not match the target type",
       "CrossEntropyLoss on a continuous target (or one output), or MSELoss on class labels, optimises the wrong thing.",
       "use MSELoss/L1Loss for regression and CrossEntropyLoss with class-index targets for classification."),
    _r("GL114", "warning", "torch.save() of the whole model object",
       "pickling the module ties the file to your code layout and needs unsafe loading.",
       "save model.state_dict() and load it with model.load_state_dict(torch.load(path, weights_only=True))."),
    _r("GL115", "warning", "torch.load() without weights_only=True",
       "a pickle-based load can execute arbitrary code from the file.",
       "pass weights_only=True and load a state_dict."),
    _r("GL116", "error", "backward() inside torch.no_grad()",
       "no graph was recorded, so backward() raises or computes nothing.",
       "compute the training loss outside no_grad/inference_mode."),
    _r("GL117", "error", "the TD target is computed with autograd recording",
       "gradients flow into the bootstrap target, so the network chases its own moving target.",
       "compute the target under `with torch.no_grad():` (or .detach() it)."),
    _r("GL118", "warning", "normalisation statistics are computed on all data before the split",
       "validation/test data leak into the scaling, so the reported scores are optimistic.",
       "split first, then compute mean/std (or fit the scaler) on the training part only."),
    _r("GL119", "warning", "the training DataLoader does not shuffle",
       "batches arrive in the same (often sorted) order every epoch, which biases SGD.",
       "pass shuffle=True to the training DataLoader (keep validation unshuffled)."),
    _r("GL120", "error", "the optimizer never steps",
       "backward() computes gradients but no optimizer.step() applies them: the weights never change.",
       "call optimizer.step() after loss.backward() in the training loop."),
    _r("GL121", "warning", "backward()/step() sits outside the loop that computes the loss",
       "only the last batch (or one accumulated gradient per epoch) is used to update the model.",
       "indent backward() and step() into the batch loop."),
    _r("GL122", "error", "gradients are clipped while still scaled by the AMP GradScaler",
       "the scaled gradients are huge, so the threshold clips almost everything.",
       "call scaler.unscale_(optimizer) before clip_grad_norm_."),
    _r("GL123", "error", "sigmoid output is fed to BCEWithLogitsLoss",
       "the loss applies sigmoid itself; a double sigmoid squashes the gradients and training stalls.",
       "pass the raw logits to BCEWithLogitsLoss (or use BCELoss on probabilities)."),
    _r("GL124", "error", "this assignment does not freeze anything",
       "`require_grad` is a typo that creates a new attribute, and `module.requires_grad = False` sets a plain "
       "attribute on the module, not on its parameters.",
       "use module.requires_grad_(False) or set p.requires_grad = False for each parameter."),
    _r("GL125", "error", "the model object is replaced after the optimizer was built on its parameters",
       "the optimizer keeps updating the old model's parameters; the new model never trains.",
       "build the optimizer after the final model object exists (or rebuild it)."),
    _r("GL126", "error", "zero_grad() runs every micro-batch while step() runs every k batches",
       "the accumulated gradients are wiped before each step: accumulation silently becomes 1 batch.",
       "call zero_grad() inside the same `if` as step(), right after it."),
    _r("GL127", "error", "the model output is detached or re-wrapped before the loss",
       "torch.tensor()/detach()/.data/.item() cut the graph, so no gradient reaches the model.",
       "pass the model output tensor to the loss directly."),
    _r("GL128", "warning", "the discriminator step uses G(z) without detach()",
       "the discriminator's backward also runs through the generator, wasting time and polluting G's gradients.",
       "feed fake.detach() to the discriminator for its own step."),
    _r("GL129", "warning", "a hand-written loss can take log(0)",
       "a probability of exactly 0 or 1 gives -inf and NaN gradients.",
       "use BCEWithLogitsLoss/CrossEntropyLoss on logits, or clamp: torch.log(p.clamp(min=1e-7))."),
    _r("GL130", "error", "prediction and target shapes broadcast against each other",
       "an [N, 1] prediction against an [N] target (or the reverse) becomes [N, N]: every output is compared with "
       "every target and the model learns the mean.",
       "make both the same shape: target.unsqueeze(1) / view(-1, 1), or prediction.squeeze(1)."),
    # runtime probes
    _r("GL201", "error", "gradients are not cleared between steps",
       "the second step's gradient equals the sum of both steps, so updates grow.",
       "call optimizer.zero_grad() each step."),
    _r("GL202", "warning", "some parameters never receive a gradient",
       "they are not used in the forward pass (or are detached) and will never train.",
       "check the forward pass uses them, or exclude them from the optimizer."),
    _r("GL203", "warning", "some parameters are unchanged by an optimizer step",
       "they are not in the optimizer, are frozen, or their learning rate is 0.",
       "pass model.parameters() to the optimizer and check requires_grad."),
    _r("GL204", "error", "the loss is not a scalar",
       "backward() needs a scalar; an unreduced loss fails or weights samples arbitrarily.",
       "reduce the loss (mean or sum)."),
    _r("GL205", "error", "the loss inputs broadcast to a different shape",
       "(N,1) against (N,) becomes (N,N): the loss compares every output with every target.",
       "make prediction and target the same shape (squeeze/unsqueeze)."),
    _r("GL206", "error", "the target type does not fit the loss",
       "class-index losses need integer targets of shape (N,); regression losses need float targets.",
       "use .long() class indices for CrossEntropyLoss, float targets for MSE/BCE."),
    _r("GL207", "error", "non-finite values",
       "NaN or Inf in inputs, outputs, loss or gradients poison every later step.",
       "clean the data, lower the learning rate, or clip gradients."),
    _r("GL208", "error", "the learning rate is 0",
       "no parameter can change.", "set a positive learning rate."),
    _r("GL209", "warning", "the model is in eval mode for training",
       "dropout is off and batch-norm statistics are frozen while training.",
       "call model.train() before the training loop."),
    _r("GL210", "warning", "the loss does not fall when over-fitting one batch",
       "a healthy model/optimizer memorises one small batch in a few dozen steps.",
       "check the learning rate, the loss/target pairing and that step() updates the parameters."),
    _r("GL212", "error", "CrossEntropyLoss is fed probabilities",
       "the rows sum to 1 (a softmax output); the loss applies log_softmax again, so gradients flatten.",
       "pass the raw logits (drop the softmax), or use log_softmax + NLLLoss."),
    _r("GL213", "error", "BCEWithLogitsLoss is fed values in [0, 1]",
       "they look like sigmoid outputs; the loss applies sigmoid again and the gradients shrink.",
       "pass the raw logits (drop the sigmoid), or use BCELoss on probabilities."),
    _r("GL214", "error", "backward() on a loss that has no autograd graph",
       "it was computed under no_grad/inference_mode, from detached values, or every parameter is frozen: "
       "backward() raises or no parameter gets a gradient.",
       "compute the loss with autograd enabled from the model output, and check requires_grad."),
    _r("GL215", "warning", "a loss graph is kept alive across optimizer steps",
       "a tensor that carries the autograd graph of earlier steps is added to: memory grows every step.",
       "accumulate loss.item() (or loss.detach()) for logging."),
    _r("GL211", "info", "the initial loss is far from the value expected for the task",
       "a strange starting loss points at a wrong loss, unscaled targets or a bad initialisation.",
       "check the output layer, the loss and the target scaling."),
]}


def finding(path: str, line: int, code: str, detail: str = "", severity: str | None = None) -> Finding:
    """Build a finding from the rule table: message = what (+ detail) + why."""
    rule = RULES[code]
    what = rule.title + (f" ({detail})" if detail else "")
    return Finding(path, int(line), code, severity or rule.severity, f"{what}: {rule.why}", rule.fix)
