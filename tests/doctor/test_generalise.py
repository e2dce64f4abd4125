"""Static rules that follow values across functions and classes, grade by model content, and read the project."""

from __future__ import annotations

import textwrap

import pytest

from glassloop.doctor import check_file, check_source
from glassloop.doctor.project import minimum, torch_minimum

SOFTMAX_MODEL = textwrap.dedent("""\
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.act = nn.{act}(dim=1)

        def forward(self, x):
            return self.act(self.fc(x))

    def step(model, optimizer, criterion, x, y):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()

    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        step(net, opt, nn.CrossEntropyLoss(), torch.randn(8, 4), torch.randint(0, 3, (8,)))
""")


@pytest.mark.parametrize(("act", "codes"), [("Softmax", [("GL112", 15)]), ("LogSoftmax", [("GL112", 15)]),
                                            ("Identity", [])])
def test_model_output_is_followed_into_a_helper_through_call_site_arguments(act, codes):
    found = [(f.code, f.line) for f in check_source(SOFTMAX_MODEL.format(act=act).replace("(dim=1)", "(dim=1)"
                                                                                        if act != "Identity" else "()"))]
    assert found == codes


EVAL_LOOP = textwrap.dedent("""\
    import torch
    from torch import nn
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), {layer}nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters())
    x, y, x_val, y_val = torch.randn(8, 3), torch.randn(8, 1), torch.randn(4, 3), torch.randn(4, 1)
    for epoch in range(3):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        with torch.no_grad():
            val = nn.functional.mse_loss(model(x_val), y_val)
""")


@pytest.mark.parametrize(("layer", "severity"), [("", "info"), ("nn.Dropout(0.2), ", "warning"),
                                                 ("nn.BatchNorm1d(8), ", "warning")])
def test_missing_eval_is_graded_by_what_the_model_contains(layer, severity):
    [found] = check_source(EVAL_LOOP.format(layer=layer))
    assert (found.code, found.line, found.severity) == ("GL107", 11, severity)   # before the no_grad block


@pytest.mark.parametrize(("spec", "low"), [(">=2.6", (2, 6)), ("==2.7.1", (2, 7, 1)), (">=2.6,<3", (2, 6)),
                                           ("<2.5", None), ("~=2.6.0", (2, 6, 0))])
def test_requirement_minimum(spec, low):
    assert minimum(spec) == low


LOAD = "import torch\nstate = torch.load('model.pt')\n"


@pytest.mark.parametrize(("name", "text", "flagged"), [
    ("pyproject.toml", '[project]\ndependencies = ["torch>=2.6", "numpy"]\n', False),
    ("requirements.txt", "numpy\ntorch==2.7.1\n", False),
    ("setup.cfg", "[options]\ninstall_requires =\n    torch>=2.8\n", False),
    ("requirements.txt", "torch>=2.1\n", True),
    ("README.md", "torch>=2.6\n", True),
])
def test_torch_load_is_version_aware(tmp_path, name, text, flagged):
    (tmp_path / name).write_text(text)
    script = tmp_path / "train.py"
    script.write_text(LOAD)
    assert [f.code for f in check_file(script)] == (["GL115"] if flagged else [])
    if name != "README.md" and flagged is False:
        assert torch_minimum(script) >= (2, 6)


def test_weights_only_false_is_flagged_even_on_a_new_torch(tmp_path):
    (tmp_path / "requirements.txt").write_text("torch>=2.6\n")
    script = tmp_path / "train.py"
    script.write_text("import torch\nstate = torch.load('m.pt', weights_only=False)\n")
    assert [(f.code, f.line) for f in check_file(script)] == [("GL115", 2)]
