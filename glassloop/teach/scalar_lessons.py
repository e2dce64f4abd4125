"""The lessons on the scalar engine (lesson 001): one weight, x=2, y=4, w=-1, lr=0.1, squared loss.

`one-param` runs lesson 001's loop exactly as the lesson writes it (the graph is built once, outside the loop,
and `loss.backward()` is called on it again and again), next to the corrected loop, from the same state.
"""

from __future__ import annotations

from glassloop.teach.lesson_tools import LessonResult, records_history, show_diagnosis, title, watch
from glassloop.teach.value import Value

X, Y, LR, W0, STEPS = 2.0, 4.0, 0.1, -1.0, 10


def first_step() -> tuple[dict[str, float], float, float]:
    """The lesson's "by hand" part on the engine: ŷ, L, dL/dw at w=-1, then exactly one update."""
    w = Value(W0, label="w")
    y_hat = w * X
    loss = (y_hat - Y).square()
    loss.backward()
    first = {"y_hat": y_hat.data, "loss": loss.data, "grad": w.grad}
    w.data -= LR * w.grad  # one step of gradient descent
    after = (w.data * X - Y) ** 2
    return first, w.data, after


def loop_as_written() -> dict[str, list[float]]:
    """Lesson 001's code line for line, the one-step section included (it leaves w.grad = -24 uncleared)."""
    x, y, w = Value(X), Value(Y), Value(W0)
    y_hat = w * x
    loss = (y_hat - y).square()  # the graph is built once, here, at w = -1
    loss.backward()
    w.data -= 0.1 * w.grad  # "apply exactly one update"
    ws, grads, losses = [], [], []
    for _step in range(STEPS):  # the lesson's loop, as printed
        loss.backward()  # the old graph again: it adds dL/dw at w = -1 to whatever w.grad holds
        grads.append(w.grad)
        w.data -= 0.1 * w.grad
        w.grad = 0.0
        ws.append(w.data)
        losses.append(loss.data)  # what "print loss" shows: the old graph's value, never updated
    return {"ws": ws, "grads": grads, "losses": losses}


def loop_corrected(w0: float = W0, one_step_first: bool = True) -> dict[str, list[float]]:
    """The loop as it must be: forward (a new graph) on the current w, clear, backward, update, every step.
    From the same state as the lesson's loop (after its one step) unless `one_step_first=False`."""
    w = Value(w0)
    if one_step_first:
        (w * X - Y).square().backward()
        w.data -= LR * w.grad  # the same single update; its gradient is cleared below, before the next backward
    ws, grads, losses = [], [], []
    for _step in range(STEPS):
        loss = (w * X - Y).square()  # 1-2. forward + loss on the current w
        w.zero_grad()  # 3. clear
        loss.backward()  # 4. backward
        losses.append(loss.data)
        grads.append(w.grad)
        ws.append(w.data)  # w the step starts from
        w.data -= LR * w.grad  # 5. update
    return {"ws": ws, "grads": grads, "losses": losses, "w_after": [*ws[1:], w.data]}


def stale_graph_only() -> tuple[list[float], list[float]]:
    """The stale graph on its own (w.grad cleared before each backward): the gradient stays -24."""
    w = Value(W0)
    stale = (w * X - Y).square()  # built once, outside the loop
    grads, ws = [], []
    for _ in range(3):
        w.zero_grad()
        stale.backward()
        w.data -= LR * w.grad
        grads.append(w.grad)
        ws.append(w.data)
    return grads, ws


def one_param() -> LessonResult:
    """Lesson 001: one weight, x=2, y=4, w=-1, lr=0.1, squared loss, the scalar engine."""
    title("one-param: watch w move because the gradient tells it to")
    first, w_one, after = first_step()
    print(f"  y_hat = w*x = {first['y_hat']:g}      L = (y_hat - y)^2 = {first['loss']:g}")
    print(f"  dL/dw = 2 (y_hat - y) x = {first['grad']:g}   (engine) ")
    watch("the gradient is NEGATIVE: increasing w lowers the loss, so w -= lr * grad moves w UP")
    print(f"  one step: w = -1 - {LR} * ({first['grad']:g}) = {w_one:.4g};  new y_hat = {w_one * X:.4g}, "
          f"new L = {after:.4g}")
    watch(f"the loss went down: {first['loss']:g} -> {after:.4g}")

    written, corrected = loop_as_written(), loop_corrected()
    print("\n  the loop, from that state (w = 1.4, w.grad still -24):")
    print(f"  {'':>4} {'as written (graph built once)':^32} | {'corrected (forward in the loop)':^34}")
    print(f"  {'step':>4} {'dL/dw':>9} {'w after':>10} {'loss':>10} | {'loss':>11} {'dL/dw':>10} {'w after':>10}")
    for step in range(STEPS):
        print(f"  {step:>4} {written['grads'][step]:>9.4g} {written['ws'][step]:>10.6g} "
              f"{written['losses'][step]:>10.4g} | {corrected['losses'][step]:>11.4g} "
              f"{corrected['grads'][step]:>10.4g} {corrected['w_after'][step]:>10.6g}")
    print("  why: the graph was built once, at w = -1, so every loss.backward() re-sends that old gradient (-24); "
          "the first call also adds it to the -24 the one-step section left in w.grad: -48.")
    print("  fix: rebuild the graph inside the loop (forward on the current w) and clear w.grad before backward: "
          "dL/dw then shrinks with the error (x0.2 a step) and w settles at 2.")
    watch("as written, 'loss' prints 36 every step and w runs away (6.2, 8.6, 11.0, ...): nothing looks wrong "
          "until you print w")
    watch("corrected, w climbs smoothly to 2 and the steps shrink: the gradient belongs to the graph it was "
          "computed on")
    stale_grads, stale_ws = stale_graph_only()  # the stale graph alone, w.grad cleared: -24 every step
    from_start = loop_corrected(one_step_first=False)  # the corrected loop from w = -1: the engine's oracle
    return {**first, "w_after_one_step": from_start["ws"][1], "loss_after_one_step": after,
            "ws": from_start["ws"], "losses": from_start["losses"], "grads": from_start["grads"],
            "stale_grads": stale_grads, "stale_ws": stale_ws,
            "as_written_ws": written["ws"], "as_written_grads": written["grads"],
            "as_written_losses": written["losses"], "corrected_ws": corrected["w_after"],
            "corrected_grads": corrected["grads"], "corrected_losses": corrected["losses"]}


def lr_too_large() -> LessonResult:
    """The one-param problem at three learning rates: smooth, oscillating, diverging."""
    steps = 12
    title("lr-too-large: the same loop, only the step size changes")
    print("  for L = (w*x - y)^2 with x=2 the error w - 2 is multiplied by (1 - 8 lr) every step:")
    runs: dict[float, dict[str, list[float]]] = {}
    for lr in (0.1, 0.2, 0.3):
        w = Value(W0)
        ws, losses, norms = [], [], []
        for _ in range(steps):
            loss = (w * X - Y).square()
            w.zero_grad()
            loss.backward()
            ws.append(w.data)
            losses.append(loss.data)
            norms.append(abs(w.grad))
            w.data -= lr * w.grad
        runs[lr] = {"ws": ws, "losses": losses, "norms": norms}
        factor = 1 - 8 * lr
        print(f"  lr={lr}: factor {factor:+.1f}  w = {', '.join(f'{v:.3g}' for v in ws[:8])} ...  "
              f"final loss {losses[-1]:.3g}")
    watch("lr=0.1: w approaches 2 from one side; lr=0.2: w jumps over 2 and back (oscillation) but settles")
    watch("lr=0.3: every jump overshoots further than the last, |factor| > 1: the loss explodes")
    print("\n  what the curve doctor says about the lr=0.3 run:")
    diverging = runs[0.3]
    label = show_diagnosis(records_history(diverging["losses"], diverging["norms"], lr=0.3))
    return {"factors": {lr: 1 - 8 * lr for lr in runs}, "final_losses": {lr: r["losses"][-1] for lr, r in runs.items()},
            "ws": {lr: r["ws"] for lr, r in runs.items()}, "diagnosis": label}
