"""The API's misuse table (issue 13 item 10, issue 12 item 8): each misuse is one GlassloopError subclass whose
one-line message names the received value and the fix, raised before the first optimizer step."""

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.core.devices import DeviceError
from glassloop.core.guards import LossError, ModelOutputError, TargetError
from glassloop.core.structured import InputError
from glassloop.errors import ConfigError, DataError

ROWS = 64


def data(features=4):
    torch.manual_seed(0)
    return torch.randn(ROWS, features), torch.randn(ROWS, 1)


def sequential(inputs=4, outputs=1):
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(inputs, 8), nn.ReLU(), nn.Linear(8, outputs))


class Custom(nn.Module):
    """Its first layer is not visible from outside (registered after the head): only the first forward tells."""

    def __init__(self, inputs=4, outputs=1):
        super().__init__()
        torch.manual_seed(1)
        self.head = nn.Linear(8, outputs)
        self.body = nn.Linear(inputs, 8)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


class ReturnsTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def forward(self, x):
        out = self.layer(x)
        return out, out.detach()


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 1), nn.Linear(2, 1)

    def forward(self, a, b):
        return self.a(a) + self.b(b)


def labels(high, classes=3):
    torch.manual_seed(2)
    y = torch.randint(0, classes, (ROWS,))
    y[ROWS // 2] = high
    return y


x, y = data()
CASES = {
    # name: (model factory, fit keyword arguments, error class, fragments: the received value ..., the fix ...)
    "wrong features, nn.Sequential": (sequential, dict(train=(x[:, :3], y)), InputError,
                                      ["3 features per row", "expects 4", "nn.Linear(3, 8)"]),
    "int64 inputs": (sequential, dict(train=(x.long(), y)), InputError, ["torch.int64", "inputs.float()"]),
    "bool inputs": (sequential, dict(train=(x > 0, y)), InputError, ["torch.bool", "inputs.float()"]),
    "complex inputs": (Custom, dict(train=(x.to(torch.complex64), y)), InputError,
                       ["complex64", "view_as_real"]),
    "0-d inputs": (sequential, dict(train=(torch.tensor(1.5), torch.tensor(2.0))), InputError,
                   ["0-d", "1.5", "view(1, -1)"]),
    "1-d inputs into nn.Linear(1, ...)": (lambda: sequential(1), dict(train=(x[:, 0], y)), InputError,
                                          ["1-d", "(64,)", "unsqueeze(1)"]),
    "model returns a tuple": (ReturnsTuple, dict(train=(x, y)), ModelOutputError,
                              ["tuple of 2", "MSELoss", "return only it"]),
    "loss returns a detached tensor": (sequential, dict(train=(x, y), loss=lambda o, t: ((o - t) ** 2).mean().detach()),
                                       LossError, ["no grad_fn", "remove .detach()"]),
    "cross_entropy class index too large": (lambda: sequential(4, 3), dict(train=(x, labels(5)), loss="cross_entropy"),
                                            TargetError, ["class index 5", "3 outputs", "[0, 3)"]),
    "cross_entropy negative class index": (lambda: sequential(4, 3), dict(train=(x, labels(-1)), loss="cross_entropy"),
                                           TargetError, ["class index -1", "renumber the labels"]),
    "cross_entropy float class labels": (lambda: sequential(4, 3),
                                         dict(train=(x, labels(0).float()), loss="cross_entropy"), TargetError,
                                         ["float targets of shape (", ".long()"]),
    "cross_entropy float targets not probabilities": (lambda: sequential(4, 3),
                                                      dict(train=(x, torch.randn(ROWS, 3)), loss="cross_entropy"),
                                                      TargetError, ["not probabilities", "argmax(1)"]),
    "bce on raw outputs": (sequential, dict(train=(x, (y > 0).float()), loss="bce"), ModelOutputError,
                           ["outputs range from", "bce_with_logits", "nn.Sigmoid()"]),
    "bce_with_logits targets of 5.0": (sequential, dict(train=(x, torch.full((ROWS, 1), 5.0)),
                                                        loss="bce_with_logits"), TargetError,
                                       ["range from 5 to 5", "0/1 labels"]),
    "device='meta'": (sequential, dict(train=(x, y), device="meta"), DeviceError, ["'meta'", "device='auto'"]),
    "device='xpu'": (sequential, dict(train=(x, y), device="xpu"), DeviceError, ["'xpu'", "device='auto'"]),
    "float ids into nn.Embedding": (lambda: nn.Sequential(nn.Embedding(10, 2), nn.Flatten(), nn.Linear(8, 1)),
                                    dict(train=(x, y)), InputError, ["torch.float32", "inputs.long()"]),
    "structured leaves disagree in rows": (TwoInputs, dict(train=({"a": x, "b": x[:-1, :2]}, y)), InputError,
                                           ["inputs['a'] has 64 rows", "inputs['b'] has 63 rows", "same first"]),
    "a dict key that is not a string": (TwoInputs, dict(train=({"a": x, 2: x[:, :2]}, y)), InputError,
                                        ["key 2", "model(**inputs)"]),
    "batches that are not pairs": (sequential, dict(train=[{"x": x, "y": y}]), InputError,
                                   ["a dict {'x'", "(inputs, targets) pair", "compute_loss"]),
    "validation inputs structured unlike training": (TwoInputs, dict(train=({"a": x, "b": x[:, :2]}, y),
                                                                     val=({"a": x, "c": x[:, :2]}, y)),
                                                     ConfigError, ["(inputs['a'], inputs['c'])", "same structure"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_misuse_is_one_line_naming_what_was_received_and_the_fix_before_any_step(name):
    factory, kwargs, error_class, fragments = CASES[name]
    model = factory()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    kwargs = dict(kwargs)
    with pytest.raises(error_class) as info:
        gl.fit(model, kwargs.pop("train"), **{"epochs": 1, "batch_size": 16, "verbose": False, **kwargs})
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert isinstance(info.value, (ConfigError, DataError))  # the families the CLI turns into one line, exit 2
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before), "an optimizer step happened"


def test_cross_entropy_probabilities_still_train():
    x4, _ = data()
    soft = torch.softmax(torch.randn(ROWS, 3), 1)
    history = gl.fit(sequential(4, 3), (x4, soft), loss="cross_entropy", epochs=1, verbose=False)
    assert len(history.records) == 1


def test_cross_entropy_ignore_index_is_not_an_out_of_range_class():
    x4, _ = data()
    ignored = labels(0)
    ignored[:5] = -100  # CrossEntropyLoss's ignore_index is not an out-of-range class
    history = gl.fit(sequential(4, 3), (x4, ignored), loss="cross_entropy", epochs=1, verbose=False)
    assert len(history.records) == 1


def test_validation_targets_are_checked_before_training_ends():
    x4, y4 = data()
    y01 = (y4 > 0).float()
    model = sequential()
    with pytest.raises(TargetError, match="range from 0 to 3"):
        gl.fit(model, (x4, y01), val=(x4, y01 * 3), loss="bce_with_logits", epochs=1, verbose=False)


@pytest.mark.parametrize("call,error_class,fragments", [
    (lambda: gl.predict(Custom(), torch.randn(10, 3)), InputError, ["3 features per row", "expects 4"]),
    (lambda: gl.predict(Custom(), torch.randint(0, 3, (10, 4))), InputError, ["inputs (int64)", "inputs.float()"]),
    (lambda: gl.predict(sequential(), torch.tensor(2.0)), InputError, ["0-d", "2.0"]),
    (lambda: gl.predict(ReturnsTuple(), torch.randn(10, 4)), ModelOutputError, ["tuple of 2", "one tensor"]),
    (lambda: gl.predict(nn.Sequential(nn.Embedding(3, 2)), torch.tensor([[0], [7]])), InputError,
     ["largest id is 7", "nn.Embedding(largest_id + 1"]),
    (lambda: gl.predict(sequential(), {"a": torch.randn(10, 4)}), InputError, ["inputs['a']", "model(**inputs)"]),
    (lambda: gl.evaluate(Custom(), (torch.randn(10, 5), torch.randn(10, 1))), InputError, ["5 features per row"]),
    (lambda: gl.evaluate(sequential(), (torch.randn(10, 4), torch.randn(10, 1)), device="meta"), DeviceError,
     ["'meta'"]),
])
def test_predict_and_evaluate_meet_the_same_misuse_with_one_line(call, error_class, fragments):
    with pytest.raises(error_class) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
