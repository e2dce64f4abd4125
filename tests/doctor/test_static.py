"""Static analysis API: suppression comments, syntax errors, rendering, unreadable files, speed."""

from __future__ import annotations

import textwrap

import pytest

from glassloop.doctor import check_file, check_source
from glassloop.errors import DataError

MISSING_ZERO_GRAD = textwrap.dedent("""\
    import torch
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 1), torch.randn(8, 1)
    for epoch in range(3):
        loss = ((model(x) - y) ** 2).mean(){comment}
        loss.backward()
        opt.step()
""")


def test_finding_fields_and_linter_rendering():
    [found] = check_source(MISSING_ZERO_GRAD.format(comment=""), "train.py")
    assert (found.path, found.line, found.code, found.severity) == ("train.py", 6, "GL101", "error")
    assert found.render().startswith("train.py:6: GL101 ")
    assert "line 7" in found.message   # names the backward() that accumulates
    assert "Fix: " in found.render() and found.fix


@pytest.mark.parametrize("comment", ["  # glassloop: ignore[GL101]", "  # glassloop: ignore",
                                     "  # glassloop: ignore[GL104, GL101]"])
def test_suppression_comment_silences_the_finding(comment):
    assert check_source(MISSING_ZERO_GRAD.format(comment=comment)) == []


def test_suppression_of_another_code_keeps_the_finding():
    found = check_source(MISSING_ZERO_GRAD.format(comment="  # glassloop: ignore[GL104]"))
    assert [f.code for f in found] == ["GL101"]


def test_syntax_error_is_an_error_finding_at_its_line():
    [found] = check_source("import torch\nfor x in range(3)\n    pass\n", "bad.py")
    assert (found.code, found.severity, found.line) == ("GL100", "error", 2)


def test_missing_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        check_file(tmp_path / "nope.py")


def test_binary_file_is_unreadable(tmp_path):
    path = tmp_path / "blob.py"
    path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DataError, match="cannot read"):
        check_file(path)


def generated_script(blocks: int) -> str:
    block = textwrap.dedent("""\
        def train_{i}(model, loader, optimizer, criterion):
            model.train()
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = criterion(model(xb), yb)
                loss.backward()
                optimizer.step()


        @torch.no_grad()
        def evaluate_{i}(model, loader, criterion):
            model.eval()
            return sum(criterion(model(xb), yb).item() for xb, yb in loader)


    """)
    head = "import torch\nfrom torch import nn\n\n\n"
    tail = "model = nn.Linear(1, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    tail += "".join(f"train_{i}(model, [], opt, nn.MSELoss())\nevaluate_{i}(model, [], nn.MSELoss())\n"
                    for i in range(blocks))
    return head + "".join(block.format(i=i) for i in range(blocks)) + tail


def test_a_thousand_line_script_of_correct_loops_has_no_findings():
    source = generated_script(60)   # its analysis time is measured by bench/doctor.py, not asserted here
    assert len(source.splitlines()) >= 1000
    assert check_source(source) == []
