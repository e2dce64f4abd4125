"""Every lesson runs from the command line, exits 0, prints what to watch, and gives the lessons' numbers.

Starting Python + torch costs seconds, so one `python -m glassloop lesson --all --json` subprocess runs every
lesson (each through the same `run_lesson(name)` that `glassloop lesson NAME` uses) and the tests read its output
and numbers; one test runs a lesson by name to cover that path end to end.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from glassloop.cli import main as cli_main
from glassloop.errors import ConfigError
from glassloop.teach.lessons import LESSONS, run_lesson

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["three-ways", "one-param", "lr-too-large", "accumulation-trap", "sgd-vs-adam", "scalar-loss", "house",
         "overfitting", "dqn-step"]


def run_cli(args: list[str], json_path: Path) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run([sys.executable, "-m", "glassloop", "lesson", *args, "--json", str(json_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done, json.loads(json_path.read_text())


@pytest.fixture(scope="module")
def all_lessons(tmp_path_factory) -> tuple[dict[str, str], dict[str, dict]]:
    """{name: printed text}, {name: key numbers} from one `glassloop lesson --all` subprocess."""
    done, numbers = run_cli(["--all"], tmp_path_factory.mktemp("lessons") / "all.json")
    printed, current = {}, None
    for line in done.stdout.splitlines():
        if line.startswith("== "):
            current = line[3:].split(":")[0]
            printed[current] = ""
        if current:
            printed[current] += line + "\n"
    return printed, numbers


def lesson(name: str, all_lessons) -> tuple[str, dict]:
    printed, numbers = all_lessons
    assert ">> watch:" in printed[name], printed[name]
    return printed[name], numbers[name]


def test_every_lesson_ran_and_printed_what_to_watch(all_lessons) -> None:
    printed, numbers = all_lessons
    assert list(printed) == list(numbers) == NAMES == list(LESSONS)
    assert all(">> watch:" in text for text in printed.values())


def test_a_lesson_by_name_in_its_own_process(tmp_path) -> None:
    done, numbers = run_cli(["scalar-loss"], tmp_path / "one.json")
    assert "RuntimeError: grad can be implicitly created only for scalar outputs" in done.stdout
    assert numbers["error"] == "grad can be implicitly created only for scalar outputs"


def test_listing_names_every_lesson_with_a_description(capsys) -> None:
    assert cli_main(["lesson"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert len(line.split(name, 1)[1].strip()) > 10


def test_unknown_lesson_is_a_config_error_listing_the_names(capsys) -> None:
    with pytest.raises(ConfigError, match="unknown lesson 'nope'.*one-param.*dqn-step"):
        run_lesson("nope")
    assert cli_main(["lesson", "nope"]) == 2  # the CLI turns it into exit 2 and one line
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "three-ways" in err


def test_one_param_lesson_001_numbers(all_lessons) -> None:
    out, n = lesson("one-param", all_lessons)
    assert (n["y_hat"], n["loss"], n["grad"]) == (-2.0, 36.0, -24.0)  # ŷ = -1*2, (−2−4)² , 2(ŷ−y)x
    assert n["w_after_one_step"] == pytest.approx(1.4)  # -1 - 0.1 * (-24)
    assert n["loss_after_one_step"] == pytest.approx(1.44)  # (2.8 - 4)²
    assert all(g < 0 for g in n["grads"])  # w is below 2 all the way: the gradient keeps pointing up
    assert all(b < a for a, b in zip(n["losses"], n["losses"][1:]))  # loss goes down every step
    assert n["ws"][-1] == pytest.approx(2.0, abs=1e-4)
    assert n["stale_grads"] == [-24.0, -24.0, -24.0]
    assert n["stale_ws"] == pytest.approx([1.4, 3.8, 6.2])
    assert "dL/dw = 2 (y_hat - y) x = -24" in out and "36 -> 1.44" in out


def test_one_param_lesson_001_loop_as_written_and_corrected(all_lessons) -> None:
    """Issue 12 item 10: the lesson's own loop (graph built once, backward again and again) next to the fix."""
    out, n = lesson("one-param", all_lessons)
    # As written: the first backward adds -24 to the -24 the one-step section left behind; then -24 forever.
    assert n["as_written_grads"] == [-48.0] + [-24.0] * 9
    assert n["as_written_ws"][:3] == pytest.approx([6.2, 8.6, 11.0])
    assert n["as_written_ws"][-1] == pytest.approx(27.8)
    assert n["as_written_losses"] == [36.0] * 10  # the stale graph's loss, printed unchanged every step
    # Corrected, from the same state (w = 1.4): the error shrinks x0.2 a step and w settles at 2.
    assert n["corrected_grads"][:3] == pytest.approx([-4.8, -0.96, -0.192])
    assert n["corrected_ws"][:2] == pytest.approx([1.88, 1.976])
    assert n["corrected_ws"][-1] == pytest.approx(2.0, abs=1e-6)
    assert n["corrected_losses"][0] == pytest.approx(1.44)
    table = out.split("the loop, from that state")[1]
    assert re.search(r"^\s+0\s+-48\s+6\.2\s+36 \|\s+1\.44\s+-4\.8\s+1\.88$", table, re.M), table
    assert re.search(r"^\s+2\s+-24\s+11\s+36 \|", table, re.M)
    explanation = [line for line in table.splitlines() if line.startswith(("  why:", "  fix:"))]
    assert len(explanation) == 2 and "-48" in explanation[0] and "inside the loop" in explanation[1]


def test_one_param_matches_the_value_engine_directly() -> None:
    """The lesson's numbers are the engine's: rebuild lesson 001's code here and compare."""
    from glassloop.teach import Value
    from glassloop.teach.scalar_lessons import loop_as_written

    w, x, y = Value(-1.0), Value(2.0), Value(4.0)
    loss = (w * x - y).square()
    loss.backward()
    w.data -= 0.1 * w.grad
    ws = []
    for _ in range(3):
        loss.backward()
        w.data -= 0.1 * w.grad
        w.grad = 0.0
        ws.append(w.data)
    assert ws == loop_as_written()["ws"][:3]


def test_lesson_json_to_a_missing_directory_is_one_line_before_running(tmp_path) -> None:
    missing = tmp_path / "missing" / "x.json"
    done = subprocess.run([sys.executable, "-m", "glassloop", "lesson", "one-param", "--json", str(missing)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""  # nothing ran
    assert done.stderr.count("\n") == 1 and "does not exist" in done.stderr and "Traceback" not in done.stderr
    assert not missing.parent.exists()
    for bad in (["one-param", "--json", str(tmp_path)], ["one-param", "--bogus"], ["--all", "one-param"]):
        assert cli_main(["lesson", *bad]) == 2, bad


def test_lesson_json_is_written_whole(tmp_path, capsys) -> None:
    target = tmp_path / "one.json"
    assert cli_main(["lesson", "one-param", "--json", str(target)]) == 0
    assert json.loads(target.read_text())["as_written_ws"][0] == pytest.approx(6.2)
    assert [p.name for p in tmp_path.iterdir()] == ["one.json"]  # no temporary file left behind


def test_three_ways_trajectories_agree(all_lessons) -> None:
    out, n = lesson("three-ways", all_lessons)
    assert n["representations"][:3] == ["Value", "NumPy", "PyTorch"]
    assert n["max_difference"] < 1e-9
    assert n["final_w"] == pytest.approx(2.0, abs=0.02) and n["final_b"] == pytest.approx(1.0, abs=0.02)
    assert "largest disagreement" in out


def test_lr_too_large_oscillates_then_diverges(all_lessons) -> None:
    out, n = lesson("lr-too-large", all_lessons)
    assert n["factors"] == pytest.approx({"0.1": 0.2, "0.2": -0.6, "0.3": -1.4})
    smooth, oscillating, diverging = (n["ws"][k] for k in ("0.1", "0.2", "0.3"))
    assert all(w <= 2 + 1e-12 for w in smooth)  # approaches from one side
    sides = [w > 2 for w in oscillating[:8]]
    assert sides == [False, True] * 4  # jumps over the minimum every step
    assert n["final_losses"]["0.2"] < 1e-3  # ... and still settles
    assert n["final_losses"]["0.3"] > 1e4 > 36  # |1 - 8 * 0.3| > 1: explodes
    assert all(abs(b - 2) > abs(a - 2) for a, b in zip(diverging, diverging[1:]))
    assert n["diagnosis"] == "diverging"
    assert "diagnosis" in out


def test_accumulation_trap_2_plus_3_is_5(all_lessons) -> None:
    out, n = lesson("accumulation-trap", all_lessons)
    assert n["first_grad"] == 2.0 and n["accumulated_grad"] == 5.0
    assert n["step_from_5"] == pytest.approx(4.8)  # 5.0 - 0.1 * 2.0
    assert n["buggy_step"] == pytest.approx(4.5)  # the step used 5.0, not 3.0
    correct, buggy = n["correct_losses"], n["buggy_losses"]
    assert all(b < a for a, b in zip(correct, correct[1:])) and correct[-1] < 0.01
    assert sum(b > a for a, b in zip(buggy, buggy[1:])) >= 10  # up and down, many times
    assert buggy[-1] > 10 * correct[-1]
    assert "2.0 + 3.0 = 5.0" in out


def test_sgd_vs_adam_one_line(all_lessons) -> None:
    _, n = lesson("sgd-vs-adam", all_lessons)
    assert n["Adam lr=0.1"]["epochs_to_target"] < n["SGD lr=0.01"]["epochs_to_target"]
    assert n["Adam lr=0.001"]["epochs_to_target"] is None and n["Adam lr=0.001"]["final_loss"] > 1
    assert n["SGD lr=0.01"]["w"] == pytest.approx(2.0, abs=0.1)


def test_scalar_loss_shows_the_real_error_then_the_fix(all_lessons) -> None:
    out, n = lesson("scalar-loss", all_lessons)
    assert n["error"] == "grad can be implicitly created only for scalar outputs"
    assert n["fixed_loss"] == pytest.approx(n["default_loss"], rel=1e-7)
    assert "RuntimeError: grad can be implicitly created only for scalar outputs" in out


def test_house_as_written_has_not_converged(all_lessons) -> None:
    _, n = lesson("house", all_lessons)
    assert n["still_falling"] and n["loss_epoch_100"] < n["loss_epoch_10"]
    assert n["loss_epoch_100"] > 100  # "very low" it is not
    assert n["diagnosis"] == "not converged"
    assert n["prediction_3000"] < 590
    assert n["scaled_loss_epoch_100"] < 1e-2
    assert n["scaled_prediction_3000"] == pytest.approx(600, abs=1)


def test_overfitting_scissors_and_early_stopping(all_lessons) -> None:
    _, n = lesson("overfitting", all_lessons)
    best = n["best_epoch"]
    assert best < 100
    assert n["final_val_loss"] > 1.2 * n["best_val_loss"]  # val turned around and climbed
    assert n["final_train_loss"] < 0.5 * n["train_losses"][best]  # while train kept falling
    assert n["diagnosis"] == "overfitting"
    assert n["early_stop_epochs"] < 400 and "early stopping" in n["early_stop_reason"]
    assert n["early_stop_kept_val_loss"] == pytest.approx(n["best_val_loss"], rel=1e-5)


def test_dqn_step_inner_loop_is_the_same_through_fit(all_lessons) -> None:
    out, n = lesson("dqn-step", all_lessons)
    assert n["max_weight_difference"] <= 1e-6
    assert n["fit_losses"] == pytest.approx(n["hand_losses"], rel=1e-6)
    assert n["policy_accuracy"] > 0.85
    assert all(norm < 10 for norm in n["grad_norms"])  # logged pre-clip norms stay under max_norm here
    assert "outer loop" in out
