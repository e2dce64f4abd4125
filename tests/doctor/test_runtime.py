"""Runtime probes on real tiny models: each one fires on a real bug, none on a healthy setup, state restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glassloop.doctor import check
from glassloop.errors import ConfigError


def codes(findings) -> set[str]:
    return {f.code for f in findings}


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(32, 3)
    return model, optimizer, (x, x.sum(1, keepdim=True))


def test_healthy_setup_is_silent_and_untouched(setup):
    model, optimizer, batch = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert check(model, nn.MSELoss(), optimizer, batch) == []
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert optimizer.state_dict()["state"] == {}
    assert all(p.grad is None for p in model.parameters())


def test_healthy_classifier_is_silent():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(30, 4)
    assert check(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1),
                 (x, torch.randint(0, 3, (30,)))) == []


def test_gl201_gradients_not_cleared_by_the_users_step(setup):
    model, optimizer, batch = setup

    def leaky_step(b):   # forgets optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(b[0]), b[1])
        loss.backward()
        optimizer.step()
        return loss

    def good_step(b):
        optimizer.zero_grad()
        return leaky_step(b)

    assert "GL201" in codes(check(model, nn.MSELoss(), optimizer, batch, train_step=leaky_step))
    assert "GL201" not in codes(check(model, nn.MSELoss(), optimizer, batch, train_step=good_step))


def test_gl202_unused_parameters():
    class WithSpare(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.spare = nn.Linear(3, 1), nn.Linear(3, 1)

        def forward(self, x):
            return self.used(x)

    model = WithSpare()
    x = torch.randn(16, 3)
    found = check(model, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1), (x, x[:, :1]))
    assert "GL202" in codes(found) and "spare.weight" in next(f.message for f in found if f.code == "GL202")


def test_gl203_parameters_missing_from_the_optimizer(setup):
    model, _, batch = setup
    partial = torch.optim.SGD(model[0].parameters(), lr=0.1)
    assert "GL203" in codes(check(model, nn.MSELoss(), partial, batch))


def test_gl204_non_scalar_loss(setup):
    model, optimizer, batch = setup
    assert "GL204" in codes(check(model, nn.MSELoss(reduction="none"), optimizer, batch))


def test_gl205_broadcasting_shapes(setup):
    model, optimizer, (x, y) = setup
    assert "GL205" in codes(check(model, nn.MSELoss(), optimizer, (x, y.squeeze(1))))


def test_gl206_float_class_indices_and_integer_regression_targets():
    model = nn.Linear(3, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, labels = torch.randn(12, 3), torch.randint(0, 4, (12,))
    assert "GL206" in codes(check(model, nn.CrossEntropyLoss(), optimizer, (x, labels.float())))
    regressor = nn.Linear(3, 1)
    assert "GL206" in codes(check(regressor, nn.MSELoss(), torch.optim.SGD(regressor.parameters(), lr=0.1),
                                  (x, labels.unsqueeze(1))))


def test_gl207_non_finite_inputs(setup):
    model, optimizer, (x, y) = setup
    x = x.clone()
    x[0, 0] = float("nan")
    assert "GL207" in codes(check(model, nn.MSELoss(), optimizer, (x, y)))


def test_gl208_zero_learning_rate(setup):
    model, _, batch = setup
    assert "GL208" in codes(check(model, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.0), batch))


def test_gl209_model_left_in_eval_mode_and_mode_restored(setup):
    model, optimizer, batch = setup
    model.eval()
    assert "GL209" in codes(check(model, nn.MSELoss(), optimizer, batch))
    assert model.training is False


def test_gl210_loss_does_not_fall(setup):
    model, _, batch = setup
    frozen_lr = torch.optim.SGD(model.parameters(), lr=1e-9)
    assert "GL210" in codes(check(model, nn.MSELoss(), frozen_lr, batch))


def test_gl211_initial_loss_far_from_expected():
    torch.manual_seed(0)
    model = nn.Linear(4, 10)
    with torch.no_grad():
        model.weight.mul_(100)
    x = torch.randn(20, 4)
    found = check(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=1e-3),
                  (x, torch.randint(0, 10, (20,))))
    assert "GL211" in codes(found)


def test_bad_batch_is_a_config_error(setup):
    model, optimizer, _ = setup
    with pytest.raises(ConfigError, match="expected an \\(inputs, targets\\) pair"):
        check(model, nn.MSELoss(), optimizer, torch.randn(3, 3))
