"""The fused step (glassloop/core/fused.py) is the same step as loss.backward(): gradients against autograd on
random shapes and activations, the same weights through gl.fit, and the cases where it must stand aside."""

import random

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.core.fused import FusedStep, supports

ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity]


def random_case(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    sizes = [rng.randint(1, 9) for _ in range(rng.randint(2, 5))]
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out, bias=rng.random() > 0.2))
        if index < len(sizes) - 2:
            layers.append(rng.choice(ACTIVATIONS)())
    classes = sizes[-1] > 1 and rng.random() > 0.5
    loss_fn = nn.CrossEntropyLoss() if classes else nn.MSELoss()
    rows = rng.randint(1, 40)
    inputs = torch.randn(rows, sizes[0])
    targets = torch.randint(0, sizes[-1], (rows,)) if classes else torch.randn(rows, sizes[-1])
    return nn.Sequential(*layers), loss_fn, inputs, targets


@pytest.mark.parametrize("seed", range(25))
def test_gradients_equal_autograd_on_random_shapes_and_activations(seed):
    model, loss_fn, inputs, targets = random_case(seed)
    assert supports(model, loss_fn)
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    reference = [p.grad.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    fused_loss = FusedStep(model, loss_fn)(inputs, targets)
    assert torch.equal(fused_loss, loss.detach())  # the loss kernels' own arithmetic: bitwise
    for expected, p in zip(reference, model.parameters()):
        torch.testing.assert_close(p.grad, expected, rtol=1e-6, atol=1e-9)


def test_fit_takes_the_fused_path_with_the_same_weights_and_says_so():
    torch.manual_seed(0)
    x, y = torch.randn(96, 4), torch.randn(96, 1)
    weights = {}
    for fused in (True, False):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
        history = gl.fit(model, (x, y), epochs=3, batch_size=16, seed=0, verbose=False, fused_step=fused)
        assert history.step_path == ("fused" if fused else "autograd")
        weights[fused] = [p.detach().clone() for p in model.parameters()]
    for a, b in zip(weights[True], weights[False]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


class Doubled(nn.Sequential):
    def forward(self, x):
        return super().forward(x) * 2


def test_a_sequential_subclass_with_its_own_forward_keeps_autograd():
    torch.manual_seed(0)
    model = Doubled(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert not supports(model, nn.MSELoss())
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    history = gl.fit(model, (x, y), epochs=1, batch_size=8, seed=0, verbose=False)
    assert history.step_path == "autograd"
    plain = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))

    class Renamed(nn.Sequential):  # a subclass that only adds a name keeps the fused step
        pass

    assert supports(Renamed(*plain), nn.MSELoss())


class Watcher:
    def on_batch_end(self, state):
        pass


@pytest.mark.parametrize("case", ["dropout", "hook", "batch_callback", "compute_loss", "accumulate", "l1", "tensor_hook"])
def test_anything_that_needs_autograd_keeps_the_lessons_path(case):
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    layers = [nn.Linear(4, 8), nn.ReLU()] + ([nn.Dropout(0.1)] if case == "dropout" else []) + [nn.Linear(8, 1)]
    model = nn.Sequential(*layers)
    options = {"epochs": 1, "batch_size": 16, "verbose": False}
    if case == "hook":
        model[0].register_forward_hook(lambda module, args, output: None)
    if case == "tensor_hook":
        model[0].weight.register_hook(lambda grad: grad)
    if case == "batch_callback":
        options["callbacks"] = [Watcher()]
    if case == "compute_loss":
        options["compute_loss"] = lambda m, batch: nn.functional.mse_loss(m(batch[0]), batch[1])
    if case == "accumulate":
        options["accumulate"] = 2
    if case == "l1":
        options["loss"] = "mae"
    assert gl.fit(model, (x, y), **options).step_path == "autograd"


def test_the_first_batch_gets_the_same_one_line_shape_error():
    model = nn.Sequential(nn.Linear(4, 1))
    with pytest.raises(gl.ConfigError, match="would broadcast"):
        gl.fit(model, (torch.randn(8, 4), torch.randn(8)), epochs=1, verbose=False)


def test_show_loop_says_which_path_ran():
    text = gl.show_loop(step_path="fused")
    assert "fused_step=False" in text and "loss.backward()" not in text.split("# ")[-1]
    assert "# autograd:" in gl.show_loop() and "# fused:" in gl.show_loop()


@pytest.mark.parametrize("progress", ["auto", True])
def test_the_default_console_keeps_the_fast_paths(progress, capsys):
    # gl.fit's own Console has an on_batch_end (its per-epoch progress bar) that reads nothing of the step: the
    # default verbose=True run must still take the fused step and the flat buffers (a user's callback does not).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    history = gl.fit(model, (torch.randn(64, 4), torch.randn(64, 1)), epochs=2, batch_size=16, seed=0,
                     progress=progress)
    assert "Epoch" in capsys.readouterr().out
    assert history.step_path == "fused"
    assert len({p.untyped_storage().data_ptr() for p in model.parameters()}) == 1  # one flat buffer
    watched = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    history = gl.fit(watched, (torch.randn(64, 4), torch.randn(64, 1)), epochs=1, batch_size=16, seed=0,
                     progress=progress, callbacks=[Watcher()])
    assert history.step_path == "autograd"
    assert len({p.untyped_storage().data_ptr() for p in watched.parameters()}) == 4


@pytest.mark.parametrize("seed", range(12))
def test_whole_fits_reuse_the_workspace_and_match_autograd(seed):
    """Many steps through one FusedStep: its buffers are reused from step to step and batch size to batch size
    (a short last batch), and two activations in a row keep their own outputs. Validation after the first epoch
    runs the fused forward: the same val loss to the bit."""
    model, loss_fn, inputs, targets = random_case(seed)
    layers = list(model)
    if seed % 3 == 0:  # an activation right after another one: it must not overwrite the output the first keeps
        layers.insert(1, nn.Tanh())
    rows = 37
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, inputs.shape[1], generator=generator)
    y = (torch.randint(0, layers[-1].out_features, (rows,), generator=generator) if targets.dtype == torch.long
         else torch.randn(rows, targets.shape[1], generator=generator))
    results = {}
    for fused in (True, False):
        torch.manual_seed(seed)
        copy = nn.Sequential(*[type(m)(m.in_features, m.out_features, bias=m.bias is not None)
                               if isinstance(m, nn.Linear) else type(m)() for m in layers])
        history = gl.fit(copy, (x[:29], y[:29]), val=(x[29:], y[29:]), loss=loss_fn, epochs=3, batch_size=8,
                         seed=0, verbose=False, fused_step=fused)
        assert history.step_path == ("fused" if fused else "autograd")
        results[fused] = ([p.detach().clone() for p in copy.parameters()],
                          [(r["train_loss"], r["grad_norm"], r["val_loss"]) for r in history.records])
    for a, b in zip(results[True][0], results[False][0]):
        assert torch.equal(a, b)
    assert results[True][1] == results[False][1]


def test_batch_sizes_in_any_order_share_one_set_of_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2))
    step = FusedStep(model, nn.MSELoss())
    for rows in (5, 9, 5, 9, 1):  # smaller, then larger (the buffers grow), then smaller again (views of them)
        x, y = torch.randn(rows, 3), torch.randn(rows, 2)
        for p in model.parameters():
            p.grad = None
        expected = nn.functional.mse_loss(model(x), y)
        expected.backward()
        reference = [p.grad.clone() for p in model.parameters()]
        for p in model.parameters():
            p.grad = None
        assert torch.equal(step(x, y), expected.detach())
        for want, p in zip(reference, model.parameters()):
            assert torch.equal(p.grad, want)
    largest = step.workspaces[None]
    assert largest.rows == 9
    for rows in (5, 1):  # the smaller batches write into the first rows of the largest batch's buffers
        assert step.workspaces[(rows, x.device)].outputs[0].data_ptr() == largest.outputs[0].data_ptr()


def fit_both_ways(make, data):
    """The same seeded 2-epoch fit with fused_step=True and False: ([step paths], [weights of each])."""
    paths, weights = [], []
    for fused in (True, False):
        torch.manual_seed(1)
        model = make()
        history = gl.fit(model, data, epochs=2, batch_size=8, seed=0, verbose=False, fused_step=fused)
        paths.append(history.step_path)
        weights.append([p.detach().clone() for p in model.parameters()])
    return paths, weights


def test_inputs_with_more_than_two_dimensions_keep_autograd_and_train():
    """nn.Linear applies to the last dimension of any input; the hand-written step is for rows x features (it
    raised 'mat1 must be a matrix' here before)."""
    torch.manual_seed(0)
    x, y = torch.randn(32, 5, 4), torch.randn(32, 5, 1)
    paths, weights = fit_both_ways(lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)), (x, y))
    assert paths == ["autograd", "autograd"]
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def tied():
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    second.weight = first.weight
    return nn.Sequential(first, nn.Tanh(), second, nn.Tanh(), nn.Linear(4, 1))


def reused():
    layer = nn.Linear(4, 4)
    return nn.Sequential(layer, nn.Tanh(), layer, nn.Linear(4, 1))


@pytest.mark.parametrize("make", [tied, reused])
def test_a_layer_used_twice_or_a_tied_weight_keeps_autograd(make):
    """Autograd adds up a shared weight's gradients; a hand-written backward writing each layer's would not."""
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    assert not supports(make(), nn.MSELoss())
    paths, weights = fit_both_ways(make, (x, y))
    assert paths == ["autograd", "autograd"]
    assert all(torch.equal(a, b) for a, b in zip(*weights))
