"""The heartbeat: lesson oracles, parity with a hand-written loop, events, schedules, argument errors."""

import math

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.core.events import EVENTS
from glassloop.errors import CallbackError, ConfigError
from tests.conftest import mlp


def test_one_sgd_step_from_lesson_000_gives_4_8():
    # w = 5.0, x = 1, y = 4: loss (w x - y)^2 has gradient 2 (w - y) = 2.0; SGD lr 0.1 -> 5.0 - 0.1 * 2.0 = 4.8
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(5.0)
    history = gl.fit(model, (torch.tensor([[1.0]]), torch.tensor([[4.0]])), loss="mse", optimizer="sgd", lr=0.1,
                     epochs=1, batch_size=None, verbose=False)
    assert model.weight.item() == pytest.approx(4.8)
    assert history.records[0]["grad_norm"] == pytest.approx(2.0)
    assert history.records[0]["train_loss"] == pytest.approx(1.0)


def test_linreg_learns_w2_b1():
    torch.manual_seed(0)
    x = torch.rand(200, 1) * 4 - 2
    y = 2 * x + 1 + 0.01 * torch.randn(200, 1)
    model = nn.Linear(1, 1)
    gl.fit(model, (x, y), optimizer="sgd", lr=0.1, epochs=50, batch_size=None, verbose=False)
    assert model.weight.item() == pytest.approx(2.0, abs=0.02)
    assert model.bias.item() == pytest.approx(1.0, abs=0.02)


def test_mse_loss_object_equals_manual_mean_square():
    torch.manual_seed(1)
    model, x, y = nn.Linear(3, 1), torch.randn(50, 3), torch.randn(50, 1)
    with torch.no_grad():
        manual = ((model(x) - y) ** 2).mean().item()
    assert nn.MSELoss()(model(x), y).item() == pytest.approx(manual)
    assert gl.evaluate(model, (x, y), loss="mse")["loss"] == pytest.approx(manual, rel=1e-6)


def hand_written_loop(model, optimizer, x, y, epochs, batch_size, seed, clip=None):
    """Lesson 004's loop with gl.fit's batch order (seeded randperm + split) and thread count (1 for small models:
    a GEMM's summation order, hence its last bits, depends on the thread count)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _hand_written_loop(model, optimizer, x, y, epochs, batch_size, seed, clip)
    finally:
        torch.set_num_threads(previous)


def _hand_written_loop(model, optimizer, x, y, epochs, batch_size, seed, clip):
    generator = torch.Generator().manual_seed(seed)
    criterion = nn.MSELoss()
    losses = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        epoch_losses = []
        for xb, yb in zip(x[order].split(batch_size), y[order].split(batch_size)):
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            epoch_losses.append(loss.item())
        losses.append(sum(epoch_losses) / len(epoch_losses))
    return losses


@pytest.mark.parametrize("name", ["sgd", "adam"])
@pytest.mark.parametrize("batch_size", [None, 32])
def test_fit_matches_hand_written_loop_bitwise(ssa_small, name, batch_size):
    (x, y), _ = ssa_small
    size = len(x) if batch_size is None else batch_size
    reference = mlp(3)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[name]
    ref_losses = hand_written_loop(reference, cls(reference.parameters(), lr=0.01, fused=True), x, y, 4, size, 7)
    model = mlp(3)
    history = gl.fit(model, (x, y), optimizer=name, lr=0.01, epochs=4, batch_size=batch_size, seed=7, verbose=False)
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)
    assert history["train_loss"] == pytest.approx(ref_losses, rel=1e-12)


def test_fit_with_optimizer_object_and_clipping_matches_hand_loop(ssa_small):
    (x, y), _ = ssa_small
    reference, model = mlp(4), mlp(4)
    hand_written_loop(reference, torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9), x, y, 3, 16, 1,
                      clip=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = gl.fit(model, (x, y), optimizer=optimizer, epochs=3, batch_size=16, seed=1, clip_grad_norm=0.5,
                     verbose=False)
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)
    assert all(r["grad_norm"] > 0.5 for r in history.records)  # the recorded norm is the pre-clip one


def test_dataset_dataloader_and_list_of_batches_all_train(ssa_small):
    from torch.utils.data import DataLoader, TensorDataset

    (x, y), val = ssa_small
    for train in (TensorDataset(x, y), DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True),
                  [(x[i:i + 100], y[i:i + 100]) for i in range(0, 400, 100)]):
        history = gl.fit(mlp(0), train, val=val, epochs=3, batch_size=50, lr=1e-2, seed=0, verbose=False)
        assert history.records[-1]["train_loss"] < history.records[0]["train_loss"]
        assert history.records[-1]["val_loss"] is not None


def test_events_fire_in_documented_order_and_bands(ssa_small):
    (x, y), val = ssa_small
    calls = []

    class Recorder:
        def __init__(self, name, band="user"):
            self.name, self.band = name, band
            for event in EVENTS:
                setattr(self, event, (lambda e: lambda state: calls.append((self.name, e)))(event))

    gl.fit(mlp(0), (x[:8], y[:8]), val=(x[:4], y[:4]), epochs=2, batch_size=4,
           callbacks=[Recorder("reporter", "reporters"), Recorder("user"), Recorder("monitor", "monitors")],
           verbose=False)
    user_events = [e for n, e in calls if n == "user"]
    batch = ["on_batch_start", "on_after_backward", "on_batch_end"]
    epoch = ["on_epoch_start", *batch, *batch, "on_epoch_end"]
    assert user_events == ["on_fit_start", *epoch, *epoch, "on_fit_end"]
    epoch_end_order = [n for n, e in calls if e == "on_epoch_end"][:3]
    assert epoch_end_order == ["user", "monitor", "reporter"]


def test_callback_error_names_callback_and_event(ssa_small):
    (x, y), _ = ssa_small

    class Broken:
        def on_epoch_end(self, state):
            raise KeyError("boom")

    with pytest.raises(CallbackError, match=r"Broken failed in on_epoch_end: KeyError"):
        gl.fit(mlp(0), (x, y), epochs=1, callbacks=[Broken()], verbose=False)


def test_shape_guard_refuses_broadcasting_targets(ssa_small):
    (x, y), _ = ssa_small
    with pytest.raises(ConfigError, match=r"\(32, 1\).*\(32,\).*unsqueeze"):
        gl.fit(mlp(0), (x, y.view(-1)), epochs=1, verbose=False)
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ConfigError, match="CrossEntropyLoss"):
        gl.fit(model, (x, torch.zeros(len(x), 1, dtype=torch.long)), loss="cross_entropy", epochs=1, verbose=False)


def test_classification_with_cross_entropy_and_accuracy_metric():
    torch.manual_seed(0)
    x = torch.randn(300, 2)
    y = (x[:, 0] + x[:, 1] > 0).long()
    history = gl.fit(nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2)), (x[:240], y[:240]),
                     val=(x[240:], y[240:]), loss="cross_entropy", lr=1e-2, epochs=15, metrics=["accuracy"],
                     seed=0, verbose=False)
    assert history.records[-1]["val_accuracy"] > 0.9


def test_metrics_are_recorded_as_val_metric(ssa_small):
    (x, y), val = ssa_small
    model = mlp(0)
    history = gl.fit(model, (x, y), val=val, epochs=2, metrics={"mae": lambda o, t: (o - t).abs().mean()},
                     verbose=False)
    with torch.no_grad():
        expected = (model(val[0]) - val[1]).abs().mean().item()
    assert history.records[-1]["val_mae"] == pytest.approx(expected, rel=1e-5)


def test_compute_loss_trains_dqn_step_with_frozen_target_network():
    # Lesson 004's DQN inner step: Huber loss on Q(s, a) vs r + gamma * max Q_target(s'), target under no_grad.
    torch.manual_seed(0)
    states, next_states = torch.randn(256, 4), torch.randn(256, 4)
    actions = torch.randint(0, 2, (256, 1))
    rewards, dones = torch.randn(256), torch.zeros(256)
    online = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    target = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    target.load_state_dict(online.state_dict())
    frozen = [p.clone() for p in target.parameters()]
    batches = [{"s": states[i:i + 64], "a": actions[i:i + 64], "r": rewards[i:i + 64], "s2": next_states[i:i + 64],
                "done": dones[i:i + 64]} for i in range(0, 256, 64)]

    def dqn_loss(model, batch):
        q = model(batch["s"]).gather(1, batch["a"]).squeeze(1)
        with torch.no_grad():
            td_target = batch["r"] + 0.99 * target(batch["s2"]).max(1).values * (1 - batch["done"])
        return nn.functional.huber_loss(q, td_target, delta=1.0)

    history = gl.fit(online, batches, compute_loss=dqn_loss, optimizer="adam", lr=1e-3, clip_grad_norm=10.0,
                     epochs=20, verbose=False)
    assert history.records[-1]["train_loss"] < history.records[0]["train_loss"]
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), frozen))


@pytest.mark.parametrize("name,per_batch", [("step", False), ("exponential", False), ("cosine", False),
                                            ("plateau", False), ("onecycle", True), ("warmup_cosine", True)])
def test_named_schedulers_step_at_their_granularity(ssa_small, name, per_batch):
    (x, y), val = ssa_small
    seen = {}

    class Spy:
        def on_fit_end(self, state):
            seen["scheduler"] = state.scheduler

    epochs, batch_size = 6, 100  # 4 steps per epoch
    history = gl.fit(mlp(0), (x, y), val=val, lr=1e-2, scheduler=name, epochs=epochs, batch_size=batch_size,
                     callbacks=[Spy()], verbose=False)
    scheduler = seen["scheduler"]
    assert type(scheduler).__module__ == "torch.optim.lr_scheduler"  # torch's own schedulers underneath
    assert scheduler.last_epoch == (epochs * 4 if per_batch else epochs)
    if name != "plateau":
        assert history.records[-1]["lr"] != history.records[0]["lr"]


def test_step_scheduler_epoch_lr_sequence_matches_torch(ssa_small):
    (x, y), _ = ssa_small
    model = mlp(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    history = gl.fit(model, (x, y), optimizer=optimizer, scheduler=scheduler, epochs=5, verbose=False)
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_plateau_scheduler_is_fed_the_validation_loss(ssa_small):
    (x, y), _ = ssa_small
    model = mlp(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.5)
    fed = []
    original = scheduler.step
    scheduler.step = lambda metric: (fed.append(metric), original(metric))
    history = gl.fit(model, (x, y), val=(x[:50], y[:50]), optimizer=optimizer, scheduler=scheduler, epochs=3,
                     verbose=False)
    assert fed == pytest.approx(history["val_loss"])


def test_user_scheduler_can_be_forced_per_batch(ssa_small):
    (x, y), _ = ssa_small
    model = mlp(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 10))
    gl.fit(model, (x, y), optimizer=optimizer, scheduler=scheduler, scheduler_step="batch", epochs=2,
           batch_size=100, verbose=False)
    assert scheduler.last_epoch == 8


@pytest.mark.parametrize("kwargs,pattern", [
    ({"loss": "msee"}, r"unknown loss 'msee'; expected one of mse"),
    ({"optimizer": "adamm"}, r"unknown optimizer 'adamm'"),
    ({"scheduler": "cosinus"}, r"unknown scheduler 'cosinus'"),
    ({"lr": -1.0}, r"lr=-1.0 must be a positive number"),
    ({"lr": 0}, r"lr=0 must be a positive number"),
    ({"weight_decay": -0.1}, r"weight_decay=-0.1 must be a number >= 0"),
    ({"epochs": 0}, r"epochs=0 must be an integer >= 1"),
    ({"batch_size": 0}, r"batch_size=0 is not a positive integer"),
    ({"clip_grad_norm": 0}, r"clip_grad_norm=0 would zero every gradient"),
    ({"momentum": 0.9}, r"momentum=0.9 only applies to optimizer='sgd'"),
    ({"device": "gpu0"}, r"device='gpu0' is not a torch device"),
    ({"metrics": {"x": 3}}, r"metric 'x' is 3, not callable"),
    ({"seed": 1.5}, r"seed=1.5 must be an integer"),
    ({"scheduler_step": "sometimes"}, r"scheduler_step='sometimes'"),
])
def test_argument_errors_are_config_errors_with_clear_messages(ssa_small, kwargs, pattern):
    (x, y), _ = ssa_small
    with pytest.raises(ConfigError, match=pattern):
        gl.fit(mlp(0), (x, y), **{"epochs": 1, "verbose": False, **kwargs})


def test_data_errors(ssa_small):
    (x, y), _ = ssa_small
    with pytest.raises(ConfigError, match="400 rows but targets have 399"):
        gl.fit(mlp(0), (x, y[:-1]), epochs=1, verbose=False)
    with pytest.raises(ConfigError, match="not a torch.nn.Module"):
        gl.fit("model", (x, y), epochs=1, verbose=False)
    with pytest.raises(ConfigError, match="one-shot iterator"):
        gl.fit(mlp(0), iter([(x, y)]), epochs=1, verbose=False)


def test_numpy_inputs_are_accepted_and_become_float32(ssa_small):
    (x, y), _ = ssa_small
    history = gl.fit(mlp(0), (x.double().numpy(), y.double().numpy()), epochs=1, verbose=False)
    assert math.isfinite(history.records[0]["train_loss"])


def test_verbose_false_is_silent_and_console_prints_table(ssa_small, capsys):
    (x, y), val = ssa_small
    gl.fit(mlp(0), (x, y), val=val, epochs=2, verbose=False)
    assert capsys.readouterr().out == ""
    gl.fit(mlp(0), (x, y), val=val, epochs=2)
    out = capsys.readouterr().out
    assert "Epoch |   Train Loss |   Val Loss |        LR | Grad Norm" in out
    assert "Best val loss" in out


def test_history_records_csv_and_json(ssa_small, tmp_path):
    import json

    (x, y), val = ssa_small
    history = gl.fit(mlp(0), (x, y), val=val, epochs=3, verbose=False)
    assert [r["epoch"] for r in history.records] == [0, 1, 2]
    assert {"epoch", "train_loss", "val_loss", "lr", "grad_norm", "seconds"} <= set(history.records[0])
    best = min(range(3), key=lambda i: history.records[i]["val_loss"])
    assert history.best_epoch == best and history.best_val_loss == history.records[best]["val_loss"]
    assert history.stop_reason == "completed 3 epochs"
    lines = history.to_csv(tmp_path / "h.csv").splitlines()
    assert lines[0].startswith("epoch,train_loss,val_loss,lr,grad_norm,seconds") and len(lines) == 4
    assert json.loads(history.to_json())["best_epoch"] == best


def test_predict_and_evaluate_restore_training_mode(ssa_small):
    (x, y), _ = ssa_small
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))
    model.train()
    first, second = gl.predict(model, x), gl.predict(model, x)
    assert torch.equal(first, second)  # eval mode: dropout off
    assert model.training
    assert first.shape == (400, 1)


def test_show_loop_lists_attached_callbacks(capsys):
    text = gl.show_loop([gl.EarlyStopping(patience=3)])
    assert "optimizer.zero_grad()" in text and "-> EarlyStopping [monitors]" in text
    assert text.index("loss.backward()") < text.index("clip_grad_norm_") < text.index("optimizer.step()")


def test_fit_restores_thread_count(ssa_small):
    (x, y), _ = ssa_small
    before = torch.get_num_threads()
    gl.fit(mlp(0), (x, y), epochs=1, verbose=False)
    assert torch.get_num_threads() == before


def test_checks_true_runs_the_runtime_probes_before_training(ssa_small, capsys):
    (x, y), _ = ssa_small
    model = mlp(0)
    seen = {}

    class Keep:
        def on_fit_start(self, state):
            seen["checks"] = state.checks

    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # a learning rate of 0 never learns
    gl.fit(model, (x, y), optimizer=optimizer, epochs=1, checks=True, callbacks=[Keep()])
    codes = {finding.code for finding in seen["checks"]}
    assert "GL208" in codes
    assert "GL208" in capsys.readouterr().out


def test_per_batch_events_see_the_batch_loss_and_pre_clip_norm(ssa_small):
    (x, y), _ = ssa_small
    seen = []

    class Watch:
        def on_batch_start(self, state):
            seen.append(("start", state.batch_index, len(state.batch[0])))

        def on_batch_end(self, state):
            seen.append(("end", state.loss.item(), state.grad_norm.item(), state.step))

    history = gl.fit(mlp(0), (x, y), epochs=1, batch_size=100, clip_grad_norm=1e-3, callbacks=[Watch()],
                     verbose=False)
    assert [s[1:] for s in seen if s[0] == "start"] == [(0, 100), (1, 100), (2, 100), (3, 100)]
    ends = [s for s in seen if s[0] == "end"]
    assert [s[3] for s in ends] == [1, 2, 3, 4]
    assert sum(s[1] for s in ends) / 4 == pytest.approx(history.records[0]["train_loss"])
    assert all(s[2] > 1e-3 for s in ends)  # the norm before clipping, not the clipped 1e-3


def test_more_bad_arguments_are_config_errors_not_tracebacks(ssa_small):
    (x, y), val = ssa_small
    bad = [
        (dict(train=(x.double(), y.double())), r"torch.float64 but the model's parameters are torch.float32"),
        (dict(train=(x,)), r"tuple of 1 tensors; expected \(inputs, targets\)"),
        (dict(train=(x, y, y)), r"tuple of 3 tensors"),
        (dict(train={"x": x}), r"train data is a dict"),
        (dict(seed=2**70), r"seed=.* must be an integer from 0"),
        (dict(seed=-1), r"seed=-1 must be an integer from 0"),
        (dict(batch_size=True), r"batch_size=True is not a positive integer"),
        (dict(shuffle="no"), r"shuffle='no' must be True or False"),
        (dict(progress="x"), r"progress='x'"),
        (dict(callbacks=[1]), r"callback 1 has none of the event methods"),
        (dict(val=(x[:100, :3], y[:100])), r"val inputs have rows of shape \(3,\) but train inputs have \(4,\)"),
        (dict(device="cuda:3"), r"CUDA device"),
        (dict(loss=nn.MSELoss(reduction="none")), r"backward\(\) needs one scalar: use reduction='mean'"),
        (dict(optimizer=torch.optim.SGD(mlp(9).parameters(), lr=0.1)), r"optimizer holds none of this model"),
    ]
    for overrides, pattern in bad:
        options = {"train": (x, y), "epochs": 1, "verbose": False, **overrides}
        with pytest.raises(ConfigError, match=pattern):
            gl.fit(mlp(0), options.pop("train"), **options)
    with pytest.raises(ConfigError, match="one class, so the loss is always 0"):
        gl.fit(nn.Linear(4, 1), (x, y), loss="cross_entropy", epochs=1, verbose=False)
    with pytest.raises(ConfigError, match="returned float"):
        gl.fit(mlp(0), [(x, y)], compute_loss=lambda m, b: 1.0, epochs=1, verbose=False)
    with pytest.raises(ConfigError, match="val targets have rows"):
        gl.fit(mlp(0), (x, y), val=(x[:10], torch.zeros(10, 2)), epochs=1, verbose=False)
    with pytest.raises(ConfigError, match="train targets have"):
        gl.fit(mlp(0), (x, y), val=(x[:100], y[:100].view(-1)), epochs=1, verbose=False)
    with pytest.raises(ConfigError, match=r"\(100, 1\).*\(100,\)"):  # validation batches get their own guard
        gl.fit(mlp(0), (x, y), val=[(x[:100], y[:100].view(-1))], epochs=1, verbose=False)
    with pytest.raises(ConfigError, match="min_delta=nan"):
        gl.EarlyStopping(min_delta=float("nan"))
    for call, pattern in [(lambda: gl.evaluate(None, (x, y)), "model is a NoneType"),
                          (lambda: gl.evaluate(mlp(0), x), "not a bare tensor"),
                          (lambda: gl.evaluate(mlp(0), (x, y), batch_size="x"), "batch_size='x'"),
                          (lambda: gl.evaluate(mlp(0), []), "empty"),
                          (lambda: gl.predict(mlp(0), x, batch_size=-1), "batch_size=-1"),
                          (lambda: gl.predict(mlp(0), "abc"), "string 'abc'")]:
        with pytest.raises(ConfigError, match=pattern):
            call()


def test_evaluate_means_per_row_for_summed_and_custom_losses():
    torch.manual_seed(0)
    x, y = torch.randn(10_000, 3), torch.randn(10_000, 1)
    model = nn.Linear(3, 1)
    with torch.no_grad():
        true_mse = ((model(x) - y) ** 2).mean().item()
    assert gl.evaluate(model, (x, y), loss=nn.MSELoss(reduction="sum"))["loss"] == pytest.approx(true_mse, rel=1e-5)
    batches = [(x[:8193], y[:8193]), (x[8193:], y[8193:])]  # uneven batches: a plain mean of means is wrong
    custom = gl.evaluate(model, batches, compute_loss=lambda m, b: ((m(b[0]) - b[1]) ** 2).mean())["loss"]
    assert custom == pytest.approx(true_mse, rel=1e-5)


@pytest.mark.parametrize("name,cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_named_adam_fast_step_equals_torch_optimizer_step_bitwise(ssa_small, name, cls):
    # gl.fit calls the fused kernel directly for the Adam it builds; torch's own step must give the same bits.
    (x, y), _ = ssa_small
    model = mlp(2)
    gl.fit(model, (x, y), optimizer=name, lr=3e-3, weight_decay=0.01, scheduler="cosine", epochs=3, batch_size=40,
           seed=4, verbose=False)
    reference = mlp(2)
    optimizer = cls(reference.parameters(), lr=3e-3, weight_decay=0.01, fused=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3, eta_min=3e-5)
    gl.fit(reference, (x, y), optimizer=optimizer, scheduler=scheduler, epochs=3, batch_size=40, seed=4,
           verbose=False)
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)


def test_optimizer_step_hooks_still_fire_for_a_named_optimizer(ssa_small):
    (x, y), _ = ssa_small
    calls = []

    class Hook:
        def on_fit_start(self, state):
            state.optimizer.register_step_post_hook(lambda optimizer, args, kwargs: calls.append(1))

    gl.fit(mlp(0), (x, y), optimizer="adam", epochs=1, batch_size=100, callbacks=[Hook()], verbose=False)
    assert len(calls) == 4
