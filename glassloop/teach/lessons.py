"""`glassloop lesson [NAME]`: the lessons' examples, runnable, each printing what the learner should watch.

Every lesson is a function that prints its story and returns a dict of the key numbers (the tests use them as
oracles). Each runs in a few seconds on a laptop CPU. `glassloop lesson` lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from glassloop.errors import ConfigError
from glassloop.teach.lesson_tools import (
    LessonResult,
    linreg_tensors,
    records_history,
    show_diagnosis,
    title,
    train_plain,
    watch,
)
from glassloop.teach.scalar_lessons import lr_too_large, one_param


@dataclass(frozen=True)
class Lesson:
    name: str
    summary: str
    run: Callable[[], LessonResult]


# ---------------------------------------------------------------------------------------------------- lessons
def three_ways_lesson() -> LessonResult:
    """The linreg loop as scalar autograd, NumPy and PyTorch (and gl.fit when present): one set of numbers."""
    from glassloop.teach.three_ways import B0, EPOCHS, LR, W0, max_difference, side_by_side, three_ways

    title("three-ways: same heartbeat, new instruments")
    print(f"  y = 2x + 1 (+ fixed noise), 8 points, w0={W0}, b0={B0}, lr={LR}, full-batch SGD, MSE, {EPOCHS} steps")
    traces = three_ways()
    print(side_by_side(traces))
    difference = max_difference(traces)
    w, b, loss = traces[0].final
    print(f"\n  largest disagreement between representations: {difference:.2e}")
    watch("every column agrees to ~1e-15: autograd computes exactly the gradients you wrote by hand")
    watch(f"w -> {w:.4f} and b -> {b:.4f}: the line y = 2x + 1 (the noise keeps them a hair off)")
    return {"representations": [t.name for t in traces], "max_difference": difference,
            "final_w": w, "final_b": b, "final_loss": loss, "losses": traces[0].losses}


def accumulation_trap() -> LessonResult:
    """No zero_grad: gradients add up (2.0 + 3.0 = 5.0) and the loss misbehaves."""
    import torch
    from torch import nn

    title("accumulation-trap: the #1 beginner bug, with a real tensor")
    p = torch.tensor(5.0, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=0.1)
    (2.0 * p).backward()  # d(2p)/dp = 2
    first = p.grad.item()
    print(f"  after the first backward:  p.grad = {first}")
    with torch.no_grad():
        stepped = (p - 0.1 * p.grad).item()
    print(f"  one SGD step from 5.0 with lr=0.1: 5.0 - 0.1 * {first} = {stepped:.1f}")
    (3.0 * p).backward()  # no zero_grad in between: the new 3.0 is ADDED to the old 2.0
    accumulated = p.grad.item()
    print(f"  second backward WITHOUT zero_grad (new gradient 3.0): p.grad = {accumulated}")
    optimizer.step()
    print(f"  so the step uses {accumulated}, not 3.0: p = 5.0 - 0.1 * {accumulated} = {p.item():.1f} (should be 4.7)")
    watch("2.0 + 3.0 = 5.0: .grad is a running sum until something clears it")

    print("\n  the linreg loop (SGD lr=0.05, 60 epochs), with and without optimizer.zero_grad():")
    x, y = linreg_tensors()
    results = {}
    for zero_grad in (True, False):
        torch.manual_seed(0)
        model = nn.Linear(1, 1)
        losses, norms = train_plain(model, x, y, torch.optim.SGD(model.parameters(), lr=0.05), 60, zero_grad)
        results[zero_grad] = (losses, norms)
    print(f"  {'epoch':>5} {'correct loss':>13} {'no zero_grad':>13} {'its |grad|':>11}")
    for epoch in range(0, 60, 5):
        print(f"  {epoch + 1:>5} {results[True][0][epoch]:>13.4f} {results[False][0][epoch]:>13.4f} "
              f"{results[False][1][epoch]:>11.3f}")
    watch("the correct loop falls steadily; without zero_grad the loss swings up and down and never settles")
    watch("the buggy .grad is the SUM of every gradient so far: the update keeps pushing long after the error flipped")
    return {"first_grad": first, "accumulated_grad": accumulated, "step_from_5": stepped,
            "buggy_step": p.item(), "correct_losses": results[True][0], "buggy_losses": results[False][0],
            "buggy_grad_norms": results[False][1]}


def sgd_vs_adam() -> LessonResult:
    """Swap the optimizer: one line changes, the loop does not."""
    import torch
    from torch import nn

    title("sgd-vs-adam: change one line")
    x, y = linreg_tensors()
    lines = {
        "SGD lr=0.01": lambda params: torch.optim.SGD(params, lr=0.01),
        "Adam lr=0.001": lambda params: torch.optim.Adam(params, lr=0.001),
        "Adam lr=0.1": lambda params: torch.optim.Adam(params, lr=0.1),
    }
    print("  optimizer = torch.optim.SGD(model.parameters(), lr=0.01)   # the only line that changes:")
    print("  optimizer = torch.optim.Adam(model.parameters(), lr=0.001)")
    epochs, target = 200, 0.05
    results: dict[str, Any] = {}
    for name, make in lines.items():
        torch.manual_seed(0)  # the same initial w and b for every optimizer
        model = nn.Linear(1, 1)
        losses, _ = train_plain(model, x, y, make(model.parameters()), epochs)
        reached = next((epoch + 1 for epoch, loss in enumerate(losses) if loss < target), None)
        results[name] = {"final_loss": losses[-1], "epochs_to_target": reached,
                         "w": model.weight.item(), "b": model.bias.item()}
        print(f"  {name:<14} loss after {epochs}: {losses[-1]:.4f}  w={model.weight.item():.3f} "
              f"b={model.bias.item():.3f}  epochs to loss<{target}: {reached or 'not reached'}")
    watch("Adam at its textbook lr=0.001 is SLOWER here: it moves each parameter about lr per step, "
           "so 200 steps move w by at most ~0.2")
    watch("Adam with a larger lr converges fastest; the learning rate belongs to the optimizer you choose")
    return results


def scalar_loss() -> LessonResult:
    """backward() needs one number: reduction='none' gives the real RuntimeError, then the fix."""
    import torch
    from torch import nn

    title("scalar-loss: backward() needs ONE number")
    x, y = linreg_tensors()
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    criterion = nn.MSELoss(reduction="none")
    loss = criterion(model(x), y)
    print(f"  criterion = nn.MSELoss(reduction='none');  loss.shape = {tuple(loss.shape)}")
    try:
        loss.backward()
    except RuntimeError as error:
        message = str(error)
    else:  # pragma: no cover - torch always refuses a non-scalar without a gradient argument
        message = ""
    print(f"  loss.backward() -> RuntimeError: {message}")
    watch("one loss per sample is 8 numbers; 'which way is downhill' needs them summarised into one")
    fixed = loss.mean()
    fixed.backward()
    default = nn.MSELoss()(model(x), y)
    print(f"  fix: loss.mean().backward() works; loss = {fixed.item():.6f}, the default "
          f"nn.MSELoss() gives {default.item():.6f}")
    return {"error": message, "fixed_loss": fixed.item(), "default_loss": default.item(),
            "weight_grad": model.weight.grad.item()}


def house() -> LessonResult:
    """Lesson 002 as written: house sizes -> prices, SGD 0.01, 100 epochs; it has not converged."""
    import torch
    from torch import nn

    title("house: lesson 002 exactly as written")
    X = torch.tensor([[1.5], [2.0], [2.5]], dtype=torch.float32)  # house sizes in 1000 sqft
    y = torch.tensor([[300], [400], [500]], dtype=torch.float32)  # prices in 1000s of dollars
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    losses, norms = train_plain(model, X, y, optimizer, epochs=100)
    for epoch in range(9, 100, 10):
        print(f"  Epoch {epoch + 1}/100, Loss: {losses[epoch]:.4f}")
    predicted = model(torch.tensor([[3.0]])).item()
    print(f"  Predicted price for a 3000 sqft house: ${predicted * 1000:,.0f}   (the data's line says $600,000)")
    watch("the lesson says 'by epoch 100 the loss is very low': it is not, and it is still falling")
    watch(f"w={model.weight.item():.1f}, b={model.bias.item():.1f}; the answer is w=200, b=0: the valley is long "
           "and narrow (x is never near 0), so SGD crawls along it")
    label = show_diagnosis(records_history(losses, norms, lr=0.01))

    print("\n  the same loop after centring the input (x - 2.0) / 0.5, lr=0.1:")
    torch.manual_seed(0)
    scaled = nn.Linear(1, 1)
    scaled_losses, _ = train_plain(scaled, (X - 2.0) / 0.5, y, torch.optim.SGD(scaled.parameters(), lr=0.1), 100)
    scaled_prediction = scaled(torch.tensor([[(3.0 - 2.0) / 0.5]])).item()
    print(f"  Epoch 100/100, Loss: {scaled_losses[-1]:.4f};  3000 sqft -> ${scaled_prediction * 1000:,.0f}")
    watch("scaling the input is the fix, not more epochs: the same 100 epochs now reach the line")
    return {"losses": losses, "loss_epoch_10": losses[9], "loss_epoch_100": losses[99],
            "still_falling": losses[99] < losses[89], "weight": model.weight.item(), "bias": model.bias.item(),
            "prediction_3000": predicted, "diagnosis": label, "scaled_loss_epoch_100": scaled_losses[-1],
            "scaled_prediction_3000": scaled_prediction}


def overfitting() -> LessonResult:
    """An over-large MLP on 20 noisy points: the scissors pattern, then early stopping with gl.EarlyStopping."""
    import torch
    from torch import nn

    import glassloop as gl

    title("overfitting: the scissors pattern, and early stopping")
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, generator=generator) * 6 - 3
    y = torch.sin(x) + 0.3 * torch.randn(60, 1, generator=generator)  # noise variance 0.09: the floor for val
    train, val = (x[:20], y[:20]), (x[20:], y[20:])

    def big_mlp() -> nn.Module:  # ~66,000 weights for 20 points
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(1, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))

    options = {"optimizer": "adam", "lr": 3e-3, "batch_size": None, "seed": 0, "verbose": False, "progress": False}
    history = gl.fit(big_mlp(), train, val, epochs=400, **options)
    print(f"  {'epoch':>5} {'train_loss':>11} {'val_loss':>9}")
    for record in history.records[::40] + history.records[-1:]:
        print(f"  {record['epoch'] + 1:>5} {record['train_loss']:>11.4f} {record['val_loss']:>9.4f}")
    best = history.best_epoch
    last = history.records[-1]
    print(f"  best val_loss {history.best_val_loss:.4f} at epoch {best + 1}; at epoch 400 train {last['train_loss']:.4f}"
          f", val {last['val_loss']:.4f}")
    watch("the blades open: train loss keeps falling toward 0 while val loss turns around and climbs")
    watch("train loss below the noise level (0.09) means the net is memorising the noise, not the sine")
    label = show_diagnosis(history)

    print("\n  the same run with callbacks=[gl.EarlyStopping(patience=20)] (restore_best=True by default):")
    model = big_mlp()
    stopped = gl.fit(model, train, val, epochs=400, callbacks=[gl.EarlyStopping(patience=20)], **options)
    kept = gl.evaluate(model, val)["loss"]
    print(f"  {stopped.stop_reason}")
    print(f"  ran {len(stopped.records)} of 400 epochs; the model we keep has val_loss {kept:.4f} (epoch "
          f"{stopped.best_epoch + 1}), not {stopped.records[-1]['val_loss']:.4f} from its last epoch")
    watch("early stopping needs no guess of the right epoch count: it watches val_loss and keeps the best weights")
    return {"train_losses": history["train_loss"], "val_losses": history["val_loss"], "best_epoch": best,
            "best_val_loss": history.best_val_loss, "final_train_loss": last["train_loss"],
            "final_val_loss": last["val_loss"], "diagnosis": label, "early_stop_epochs": len(stopped.records),
            "early_stop_reason": stopped.stop_reason, "early_stop_kept_val_loss": kept}


GAMMA, DQN_EPOCHS, SYNC_EVERY = 0.9, 40, 5


def _dqn_problem() -> tuple[Any, Any, Any]:
    """(replay_batches, networks, dqn_loss_with): a tiny offline problem of 512 stored transitions; the reward is
    1 when the action matches the sign of state[0]."""
    import copy

    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    generator = torch.Generator().manual_seed(0)
    states = torch.rand(512, 4, generator=generator) * 2 - 1
    actions = torch.randint(0, 2, (512, 1), generator=generator)
    rewards = ((actions.squeeze(1) == 1) == (states[:, 0] > 0)).float()
    next_states = torch.rand(512, 4, generator=generator) * 2 - 1
    dones = (torch.rand(512, generator=generator) < 0.1).float()
    transitions = TensorDataset(states, actions, rewards, next_states, dones)

    def replay_batches() -> DataLoader:  # the same shuffled order for both runs
        return DataLoader(transitions, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))

    def networks() -> tuple[nn.Module, nn.Module]:
        torch.manual_seed(0)
        online = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
        target = copy.deepcopy(online).requires_grad_(False)  # frozen: only copied into, never trained
        return online, target

    def dqn_loss_with(target_net: nn.Module):
        def dqn_loss(online_net: nn.Module, batch) -> torch.Tensor:
            states, actions, rewards, next_states, dones = batch
            q_values = online_net(states).gather(1, actions)  # Q(s, a) of the actions taken
            with torch.no_grad():  # the target network gives fixed targets
                td_targets = rewards + GAMMA * target_net(next_states).max(1).values * (1 - dones)
            return F.huber_loss(q_values.squeeze(1), td_targets, delta=1.0)

        return dqn_loss

    return replay_batches, networks, dqn_loss_with


def _dqn_by_hand(replay_batches: Any, networks: Any, dqn_loss_with: Any) -> tuple[list[float], list[Any]]:
    """Lesson 004's inner step inside a hand-written outer loop: (epoch losses, final weights)."""
    import torch

    online, target = networks()
    optimizer = torch.optim.Adam(online.parameters(), lr=1e-3)
    dqn_loss = dqn_loss_with(target)
    hand_losses, batches = [], replay_batches()
    for epoch in range(DQN_EPOCHS):
        losses = []
        for batch in batches:  # a new shuffle every epoch, from one seeded generator
            optimizer.zero_grad()
            loss = dqn_loss(online, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(online.parameters(), max_norm=10.0)  # clip between backward and step
            optimizer.step()
            losses.append(loss.item())
        hand_losses.append(sum(losses) / len(losses))
        if (epoch + 1) % SYNC_EVERY == 0:
            target.load_state_dict(online.state_dict())  # outer loop: refresh the frozen copy
    return hand_losses, [p.detach().clone() for p in online.parameters()]


def dqn_step() -> LessonResult:
    """Lesson 004's DQN inner step (Huber, frozen target net, clipping) by hand and through gl.fit."""
    import torch

    import glassloop as gl

    title("dqn-step: the outer loop changes, the inner loop does not")
    replay_batches, networks, dqn_loss_with = _dqn_problem()
    hand_losses, hand_weights = _dqn_by_hand(replay_batches, networks, dqn_loss_with)

    # The same inner step handed to gl.fit; the outer loop (epochs, batches, sync, records) is glassloop's.
    online, target = networks()

    class SyncTarget:  # the only outer-loop piece that is DQN's own: a callback
        def on_epoch_end(self, state) -> None:
            if (state.epoch + 1) % SYNC_EVERY == 0:
                target.load_state_dict(online.state_dict())

    history = gl.fit(online, replay_batches(), optimizer=torch.optim.Adam(online.parameters(), lr=1e-3),
                     compute_loss=dqn_loss_with(target), clip_grad_norm=10.0, epochs=DQN_EPOCHS, batch_size=None,
                     callbacks=[SyncTarget()], verbose=False, progress=False)
    difference = max((a - b).abs().max().item() for a, b in zip(hand_weights, online.parameters(), strict=True))
    fit_losses = history["train_loss"]
    print(f"  {'epoch':>5} {'hand loop':>10} {'gl.fit':>10} {'grad_norm':>10}")
    for epoch in [*range(0, DQN_EPOCHS, 5), DQN_EPOCHS - 1]:
        print(f"  {epoch + 1:>5} {hand_losses[epoch]:>10.5f} {fit_losses[epoch]:>10.5f} "
              f"{history.records[epoch]['grad_norm']:>10.4f}")
    print(f"  largest weight difference after {DQN_EPOCHS} epochs: {difference:.1e}")
    watch("the same Huber loss, the same clipping, the same numbers: fit only took over the outer loop")
    watch("the loss does not go to 0: the targets move every time the frozen network is refreshed")
    probe = torch.rand(1000, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        greedy = online(probe).argmax(1)
    accuracy = ((greedy == 1) == (probe[:, 0] > 0)).float().mean().item()
    print(f"  greedy policy picks the rewarded action on {accuracy:.1%} of 1000 new states")
    return {"hand_losses": hand_losses, "fit_losses": fit_losses, "max_weight_difference": difference,
            "policy_accuracy": accuracy, "grad_norms": history["grad_norm"]}


LESSONS: dict[str, Lesson] = {
    lesson.name: lesson
    for lesson in [
        Lesson("three-ways", "the linreg loop as scalar autograd, NumPy and PyTorch: identical numbers",
               three_ways_lesson),
        Lesson("one-param", "lesson 001: one weight, x=2, y=4, w=-1, lr=0.1 - the sign of the gradient", one_param),
        Lesson("lr-too-large", "the same problem at three learning rates: smooth, oscillating, diverging",
               lr_too_large),
        Lesson("accumulation-trap", "no zero_grad: 2.0 + 3.0 = 5.0 and the loss misbehaves", accumulation_trap),
        Lesson("sgd-vs-adam", "one changed line, convergence compared", sgd_vs_adam),
        Lesson("scalar-loss", "reduction='none' -> the real RuntimeError, then the fix", scalar_loss),
        Lesson("house", "lesson 002 as written: still falling at epoch 100, and the diagnosis", house),
        Lesson("overfitting", "an over-large MLP on 20 noisy points: scissors, then gl.EarlyStopping", overfitting),
        Lesson("dqn-step", "lesson 004's Huber + target net + clipping step, by hand and through gl.fit", dqn_step),
    ]
}


def run_lesson(name: str) -> LessonResult:
    """Run one lesson by name and return its key numbers."""
    if name not in LESSONS:
        raise ConfigError(f"unknown lesson {name!r}; expected one of: {', '.join(LESSONS)}")
    return LESSONS[name].run()
