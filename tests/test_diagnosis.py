"""Learning-curve diagnosis: lesson tables and the house run as oracles, synthetic curves for every label (clean
and noisy, at several scales), edge cases, the history.csv reader and `glassloop diagnose DIR`."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from glassloop.analysis.diagnosis import CODES, LABELS, Diagnosis, diagnose, load_history
from glassloop.core.state import History
from glassloop.errors import DataError

ROOT = Path(__file__).resolve().parent.parent

# Lesson 004's two tables, exactly as printed (sparse: only some epochs are listed).
LESSON_OVERFITTING = [
    {"epoch": 1, "train_loss": 0.850, "val_loss": 0.870},
    {"epoch": 10, "train_loss": 0.120, "val_loss": 0.135},
    {"epoch": 20, "train_loss": 0.050, "val_loss": 0.080},
    {"epoch": 30, "train_loss": 0.030, "val_loss": 0.078},
    {"epoch": 40, "train_loss": 0.020, "val_loss": 0.085},
    {"epoch": 50, "train_loss": 0.015, "val_loss": 0.098},
]
LESSON_UNDERFITTING = [
    {"epoch": 1, "train_loss": 0.850, "val_loss": 0.870},
    {"epoch": 20, "train_loss": 0.600, "val_loss": 0.610},
    {"epoch": 50, "train_loss": 0.550, "val_loss": 0.560},
]


def records(train, val=None) -> list[dict]:
    """Epoch dicts without an 'epoch' key (numbered 1..n by the diagnosis)."""
    rows = []
    for i, value in enumerate(train):
        row = {"train_loss": float(value)}
        if val is not None:
            row["val_loss"] = float(val[i])
        rows.append(row)
    return rows


def noisy(curve: np.ndarray, relative: float, seed: int) -> np.ndarray:
    return curve * (1 + relative * np.random.default_rng(seed).standard_normal(len(curve)))


E50, E100 = np.arange(50.0), np.arange(100.0)


# ------------------------------------------------------------------------------------------ the oracles


def test_lesson_overfitting_table_best_epoch_30():
    diagnosis = diagnose(LESSON_OVERFITTING)
    assert diagnosis.label == "overfitting"
    assert diagnosis.code == "GL301"
    assert diagnosis.best_epoch == 30
    assert diagnosis.best_value == pytest.approx(0.078)
    evidence = diagnosis.findings[0].evidence
    assert "epoch 30" in evidence and "0.078" in evidence and "0.098" in evidence
    assert "epoch 30" in diagnosis.findings[0].advice  # "keep the weights from epoch 30"


def test_lesson_underfitting_table():
    diagnosis = diagnose(LESSON_UNDERFITTING)
    assert diagnosis.label == "underfitting"
    assert diagnosis.code == "GL302"
    assert "0.85" in diagnosis.findings[0].evidence and "0.55" in diagnosis.findings[0].evidence


def house_run(seed: int) -> list[float]:
    """Lesson 002 exactly: 3 houses, nn.Linear(1, 1), SGD lr 0.01, MSE, full batch, 100 epochs."""
    torch.manual_seed(seed)
    inputs = torch.tensor([[1.5], [2.0], [2.5]])
    targets = torch.tensor([[300.0], [400.0], [500.0]])
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.MSELoss()
    losses = []
    for _ in range(100):
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_house_run_is_not_converged(seed):
    losses = house_run(seed)
    assert losses[-1] < losses[-2] < losses[-11]  # the premise: still falling at epoch 100
    diagnosis = diagnose(records(losses))
    assert diagnosis.label == "not converged"
    assert diagnosis.title == "not converged (still improving)"
    assert diagnosis.codes == ["GL303", "GL309"]  # and no validation data
    assert "epoch 100" in diagnosis.findings[0].evidence
    assert "3x" in diagnosis.findings[0].advice
    # As a History (0-based epochs in code) the evidence still speaks of epoch 100 and the best is the last.
    history = History()
    for epoch, loss in enumerate(losses):
        history.append({"epoch": epoch, "train_loss": loss, "val_loss": None})
    from_history = diagnose(history)
    assert from_history.label == "not converged"
    assert from_history.best_epoch == 100 and from_history.best_index == 99


# ------------------------------------------------------------------------------------------ every label

SHAPES = {
    "healthy": [
        (0.05 + 0.95 * np.exp(-E50 / 8), 0.07 + 0.95 * np.exp(-E50 / 8)),
        (0.1 + 2 * np.exp(-E100 / 10), 0.12 + 2 * np.exp(-E100 / 10)),
        (1e4 * (0.05 + 0.95 * np.exp(-E50 / 6)), None),
        (noisy(0.05 + 0.95 * np.exp(-E50 / 8), 0.02, 1), noisy(0.07 + 0.95 * np.exp(-E50 / 8), 0.02, 2)),
        (noisy(0.1 + np.exp(-E100 / 12), 0.03, 3), noisy(0.13 + np.exp(-E100 / 12), 0.03, 4)),
    ],
    "overfitting": [
        (np.exp(-E50 / 10) + 0.01, 0.3 + np.exp(-E50 / 8) + 0.004 * np.maximum(0, E50 - 20)),
        (0.01 + np.exp(-E50 / 10), 0.1 + (E50 - 15) ** 2 / 2000),  # a U-shaped validation curve
        (np.exp(-E50 / 5), 0.9 + 0.01 * np.sin(E50)),  # train memorised, validation never moved
        (
            noisy(np.exp(-E100 / 15) + 0.01, 0.02, 5),
            noisy(0.2 + np.exp(-E100 / 10) + 0.002 * np.maximum(0, E100 - 30), 0.03, 6),
        ),
    ],
    "underfitting": [
        (0.7 + 0.3 * np.exp(-E50 / 5), 0.72 + 0.3 * np.exp(-E50 / 5)),
        (2.3 - 0.8 * (1 - np.exp(-E50 / 4)), None),  # cross-entropy that stalls at 1.5
        (noisy(0.8 + 0.2 * np.exp(-E100 / 10), 0.02, 7), noisy(0.82 + 0.2 * np.exp(-E100 / 10), 0.02, 8)),
    ],
    "not converged": [
        (np.exp(-E50 / 100), None),
        (1 - 0.012 * E50, 1.02 - 0.012 * E50),  # a straight line down
        (1 / (1 + 0.05 * E100), None),
        (0.05 + np.exp(-E50 / 25), None),
        (noisy(np.exp(-E100 / 60), 0.02, 9), noisy(1.05 * np.exp(-E100 / 60), 0.02, 10)),
    ],
    "diverging": [
        (np.exp(-E50 / 10) + np.where(E50 > 30, np.exp((E50 - 30) / 3) - 1, 0), None),  # explodes late
        (np.exp(E50 / 10), None),  # climbs from the start
        (np.r_[np.exp(-np.arange(20) / 5), np.exp(-4) * np.exp(np.arange(20) / 2)], None),
        (noisy(1 + 0.02 * E50, 0.02, 11), None),
    ],
    "oscillating": [
        (0.5 + 0.3 * (-1.0) ** E50, None),
        (0.9 * np.exp(-E50 / 10) + 0.1 + 0.08 * np.sin(1.3 * E50), None),
        (0.4 * (1 + 0.5 * np.random.default_rng(12).uniform(-1, 1, 50)), None),
        (
            np.r_[np.linspace(1, 0.3, 10), 0.3 * (1 + 0.4 * np.random.default_rng(13).uniform(-1, 1, 40))],
            None,
        ),
    ],
    "plateau": [
        (np.maximum(0.3, np.exp(-E100 / 5)), None),
        (0.3 + 0.7 * np.exp(-E100 / 3), None),
        (noisy(0.2 + 0.8 * np.exp(-E100 / 4), 0.02, 14), noisy(0.25 + 0.8 * np.exp(-E100 / 4), 0.02, 15)),
        (np.r_[np.linspace(1, 0.2, 10), np.full(40, 0.2)], None),
    ],
}
CASES = [(label, i, train, val) for label, shapes in SHAPES.items() for i, (train, val) in enumerate(shapes)]
CODE_OF = {"healthy": "GL300", "overfitting": "GL301", "underfitting": "GL302", "not converged": "GL303",
           "diverging": "GL304", "oscillating": "GL305", "plateau": "GL306"}  # fmt: skip


@pytest.mark.parametrize(("label", "index", "train", "val"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_synthetic_curves(label, index, train, val):
    diagnosis = diagnose(records(train, val))
    assert diagnosis.label == label, str(diagnosis)
    assert diagnosis.code == CODE_OF[label]
    finding = diagnosis.findings[0]
    assert finding.evidence and finding.advice
    assert re.search(r"epochs? \d+", finding.evidence) or label == "healthy"


@pytest.mark.parametrize(("label", "index", "train", "val"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_scale_free(label, index, train, val):
    """Multiplying a loss by 1e-4 or 1e5 changes nothing: the thresholds are relative."""
    for factor in (1e-4, 1e5):
        scaled = diagnose(records(train * factor, None if val is None else val * factor))
        assert scaled.label == label


def test_sparse_epochs_are_quoted_as_given():
    rows = [{"epoch": e, "train_loss": 1.0 - 0.01 * e, "val_loss": 1.05 - 0.01 * e} for e in range(5, 80, 5)]
    diagnosis = diagnose(rows)
    assert diagnosis.label == "not converged"
    assert diagnosis.best_epoch == 75
    assert "epoch 75" in diagnosis.findings[0].evidence


def test_advice_follows_the_rule_of_thumb():
    def advice(label_index):
        label, index = label_index
        train, val = SHAPES[label][index]
        return diagnose(records(train, val)).findings[0].advice

    assert "10x" in advice(("diverging", 0))  # diverges -> LR / 10
    assert "10x" in advice(("oscillating", 0))
    assert "3x" in advice(("not converged", 0))  # slow -> LR x 3
    assert "cosine" in advice(("plateau", 0))  # plateau -> cosine / step decay
    assert "EarlyStopping" in advice(("overfitting", 0))  # overfits -> keep the best epoch


# ------------------------------------------------------------------------------------------ edge cases


def test_nan_is_diverging_with_the_epoch():
    losses = [1.0, 0.5, 0.3, float("nan"), float("nan")]
    diagnosis = diagnose(records(losses))
    assert diagnosis.label == "diverging" and diagnosis.code == "GL307"
    assert "epoch 4" in diagnosis.findings[0].evidence and "0.3 at epoch 3" in diagnosis.findings[0].evidence
    assert diagnosis.best_epoch == 3
    json.dumps(diagnosis.to_dict(), allow_nan=False)  # JSON-safe


def test_inf_in_validation_only():
    rows = records([1.0, 0.5, 0.3, 0.2], [1.0, 0.6, math.inf, 0.4])
    diagnosis = diagnose(rows)
    assert diagnosis.code == "GL307" and "val_loss became inf at epoch 3" in diagnosis.findings[0].evidence


def test_nan_at_the_first_epoch():
    diagnosis = diagnose(records([float("nan")] * 4))
    assert diagnosis.code == "GL307" and diagnosis.best_epoch is None
    json.dumps(diagnosis.to_dict(), allow_nan=False)


@pytest.mark.parametrize("losses", [[0.7], [0.7, 0.6]])
def test_too_few_epochs(losses):
    diagnosis = diagnose(records(losses))
    assert diagnosis.code == "GL308" and diagnosis.label == "not converged"
    assert "more epochs" in diagnosis.findings[0].advice


def test_two_epochs_rising_sharply_is_diverging():
    assert diagnose(records([1.0, 5.0])).label == "diverging"


def test_constant_curve_learns_nothing():
    diagnosis = diagnose(records([0.69] * 20, [0.7] * 20))
    assert diagnosis.label == "underfitting" and "nothing is being learned" in diagnosis.findings[0].evidence


def test_constant_zero_loss_is_not_a_problem_but_is_explained():
    diagnosis = diagnose(records([0.0] * 10))
    assert diagnosis.label == "healthy" and "exactly 0" in diagnosis.findings[0].evidence


def test_no_validation_adds_a_note():
    diagnosis = diagnose(records(0.05 + np.exp(-E50 / 6)))
    assert "GL309" in diagnosis.codes and diagnosis.monitor == "train_loss"
    with_val = diagnose(records(0.05 + np.exp(-E50 / 6), 0.06 + np.exp(-E50 / 6)))
    assert "GL309" not in with_val.codes and with_val.monitor == "val_loss"


def test_early_stopped_overfitting_says_so():
    history = History(stop_reason="early stopping: val_loss did not improve for 10 epochs")
    for row in LESSON_OVERFITTING:
        history.append({**row, "epoch": row["epoch"] - 1})
    diagnosis = diagnose(history)
    assert diagnosis.label == "overfitting" and diagnosis.best_epoch == 30
    assert "already" in diagnosis.findings[0].advice


def test_plateau_advice_knows_a_decayed_lr():
    rows = records(np.maximum(0.3, np.exp(-E100 / 5)))
    for i, row in enumerate(rows):
        row["lr"] = 1e-3 * 0.5 ** (i // 20)
    assert "already decayed" in diagnose(rows).findings[0].advice


@pytest.mark.parametrize(
    "bad",
    [[], [{"epoch": 1}], [{"train_loss": "abc"}], [{"epoch": 2, "train_loss": 1.0}, {"epoch": 1, "train_loss": 0.5}],
     [{"epoch": 1, "train_loss": 1.0}, {"train_loss": 0.5}], 42, [3.0]],
)  # fmt: skip
def test_bad_input_is_a_data_error(bad):
    with pytest.raises(DataError):
        diagnose(bad)


def test_dict_of_lists_like_the_lesson_history():
    diagnosis = diagnose({"train_loss": [0.85, 0.6, 0.55], "val_loss": [0.87, 0.61, 0.56], "lr": [1e-3] * 3})
    assert diagnosis.label == "underfitting"


def test_history_is_one_based_on_screen():
    history = History()
    for row in LESSON_OVERFITTING:
        history.append({**row, "epoch": row["epoch"] - 1})  # 0, 9, 19, ... in code
    diagnosis = history.diagnose()
    assert diagnosis.best_epoch == 30 and diagnosis.best_index == 3
    assert history.best_epoch == 29


def test_output_forms():
    diagnosis = diagnose(LESSON_OVERFITTING)
    assert isinstance(diagnosis, Diagnosis)
    text = str(diagnosis)
    assert text.splitlines()[0].startswith("diagnosis: overfitting (GL301)")
    assert "evidence:" in text and "advice:" in text
    data = json.loads(json.dumps(diagnosis.to_dict()))
    assert (
        data["label"] == "overfitting" and data["best_epoch"] == 30 and data["findings"][0]["code"] == "GL301"
    )
    tags = diagnosis.tags()
    assert tags["glassloop.analysis.diagnosis"] == "overfitting" and tags["glassloop.best_epoch"] == "30"
    assert all(isinstance(v, str) for v in tags.values())


def test_codes_are_stable_and_documented():
    assert CODES == {
        "GL300": "healthy", "GL301": "overfitting", "GL302": "underfitting", "GL303": "not converged",
        "GL304": "diverging", "GL305": "oscillating", "GL306": "plateau", "GL307": "diverging",
        "GL308": "too few epochs", "GL309": "no validation",
    }  # fmt: skip
    assert set(LABELS) == {"healthy", "overfitting", "underfitting", "not converged", "diverging", "oscillating",
                           "plateau"}  # fmt: skip
    docs = (ROOT / "docs" / "diagnosis.md").read_text()
    for code in CODES:
        assert code in docs


# ------------------------------------------------------------------------------------------ history.csv and CLI


def write_run(directory: Path, rows: list[dict]) -> Path:
    history = History()
    for row in rows:
        history.append(row)
    directory.mkdir(parents=True, exist_ok=True)
    history.to_csv(directory / "history.csv")
    return directory


def overfitting_run(directory: Path) -> Path:
    rows = [{"epoch": r["epoch"] - 1, "train_loss": r["train_loss"], "val_loss": r["val_loss"], "lr": 1e-3,
             "grad_norm": 1.0, "seconds": 0.1} for r in LESSON_OVERFITTING]  # fmt: skip
    return write_run(directory, rows)


def test_load_history_round_trip(tmp_path):
    run = write_run(tmp_path / "run", [{"epoch": 0, "train_loss": 1.0, "val_loss": None, "lr": 0.1},
                                       {"epoch": 1, "train_loss": 0.5, "val_loss": None, "lr": 0.1}])  # fmt: skip
    history = load_history(run)
    assert history.records == [{"epoch": 0, "train_loss": 1.0, "val_loss": None, "lr": 0.1},
                               {"epoch": 1, "train_loss": 0.5, "val_loss": None, "lr": 0.1}]  # fmt: skip
    assert history.best_epoch == 1
    assert load_history(run / "history.csv").records == history.records


def glassloop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glassloop", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)  # fmt: skip


def test_cli_text_and_json(tmp_path):
    run = overfitting_run(tmp_path / "run")
    text = glassloop("diagnose", str(run))
    assert text.returncode == 0, text.stderr
    assert "overfitting (GL301)" in text.stdout and "best epoch 30" in text.stdout
    as_json = glassloop("diagnose", str(run), "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["label"] == "overfitting" and data["best_epoch"] == 30


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    malformed = tmp_path / "malformed"
    malformed.mkdir()
    (malformed / "history.csv").write_text("epoch,train_loss\n0,1.0\n1,banana\n")
    no_loss = tmp_path / "no_loss"
    no_loss.mkdir()
    (no_loss / "history.csv").write_text("a,b\n1,2\n")
    cases = {
        str(tmp_path / "missing"): "does not exist",
        str(tmp_path / "empty"): "no history.csv",
        str(malformed): "banana",
        str(no_loss): "no train_loss/val_loss column",
    }
    for directory, message in cases.items():
        result = glassloop("diagnose", directory)
        assert result.returncode == 2, (directory, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert message in result.stderr
    bad_flag = glassloop("diagnose", str(tmp_path), "--format", "xml")
    assert bad_flag.returncode == 2 and len(bad_flag.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------ honest blow-ups (issue 12)

LONG_NUMBER = re.compile(r"\d{13,}")  # a float printed with all its digits (e.g. 293109241876068629957149464975114240)


def history_of(train, val=None, stop_reason=None) -> History:
    """A real History (0-based epochs in code), as gl.fit returns it."""
    history = History(stop_reason=stop_reason)
    for epoch, loss in enumerate(train):
        history.append({"epoch": epoch, "train_loss": float(loss), "val_loss": None if val is None else float(val[epoch]),
                        "lr": 0.01, "grad_norm": 1.0, "seconds": 0.0})  # fmt: skip
    return history


def test_a_blow_up_that_stopped_on_an_infinite_gradient_is_diverged_not_too_few_epochs():
    # Issue 12 item 4: SGD + momentum exploding to 1e22..1e34, stopped by the non-finite guard. It used to be
    # GL308 "not converged" with 36-digit numbers and advice about a best.pt that did not exist.
    reason = ("non-finite gradient norm (inf) at epoch 3, batch 2, step 70; no update was applied. Lower the "
              "learning rate ~10x, add clip_grad_norm=1.0, and check the data for NaN/Inf or unscaled features")
    history = history_of([2.93e22, 4.1e28], [2.931e22, 2.93109241876068629957149464975114240e35], stop_reason=reason)
    diagnosis = diagnose(history)
    assert diagnosis.label == "diverging" and diagnosis.code == "GL307", str(diagnosis)
    assert "GL308" not in diagnosis.codes
    evidence, advice = diagnosis.findings[0].evidence, diagnosis.findings[0].advice
    assert "non-finite gradient norm (inf) at epoch 3" in evidence
    assert "2.93e+22 at epoch 1" in evidence and "4.1e+28 at epoch 2" in evidence
    assert "10x" in advice and "0.01 -> 0.001" in advice and "clip_grad_norm=1.0" in advice
    assert "best.pt" not in str(diagnosis)  # nobody said one exists
    assert "2.931e+35" in str(diagnosis) or "2.931e+22" in str(diagnosis)
    assert not LONG_NUMBER.search(str(diagnosis)) and not LONG_NUMBER.search(json.dumps(diagnosis.to_dict()))


def test_a_single_epoch_run_stopped_by_the_guard_is_diverged():
    history = history_of([1.02e21], [4.07e21], stop_reason="non-finite loss (inf) at epoch 2, batch 1, step 33; ...")
    diagnosis = diagnose(history)
    assert diagnosis.code == "GL307" and diagnosis.label == "diverging"
    assert "its only recorded epoch (1) had train_loss 1.02e+21" in diagnosis.findings[0].evidence


@pytest.mark.parametrize("factor", [1.0, 1e-4, 1e5])
def test_growth_by_orders_of_magnitude_is_diverged_at_any_scale(factor):
    # Three epochs, no NaN yet: the loss grew 10^35-fold. Not "too few epochs", not "not converged".
    diagnosis = diagnose(history_of(np.array([0.5, 3e3, 2.93e35]) * factor))
    assert diagnosis.code == "GL304" and diagnosis.label == "diverging", str(diagnosis)
    evidence = diagnosis.findings[0].evidence
    assert "blew up" in evidence and "orders of magnitude" in evidence and "epoch 1" in evidence
    assert f"{2.93e35 * factor:.4g} at epoch 3" in evidence
    assert not LONG_NUMBER.search(str(diagnosis))


def test_a_spike_of_two_decades_that_recovered_is_still_called_a_blow_up():
    losses = list(np.exp(-E50[:20] / 5)) + [500.0] + list(np.exp(-E50[:20] / 5) * 0.02)
    diagnosis = diagnose(history_of(losses))
    assert diagnosis.code == "GL304" and "it ended at" in diagnosis.findings[0].evidence


def test_a_real_sgd_momentum_blow_up_through_fit():
    import glassloop as gl
    from glassloop.core.workloads import mlp, ssa

    train, val = ssa()
    torch.manual_seed(0)
    history = gl.fit(mlp(), train, val, optimizer="sgd", lr=0.5, momentum=0.9, epochs=20, batch_size=64, seed=0,
                     verbose=False, progress=False)  # fmt: skip
    assert history.stop_reason.startswith("non-finite")  # the premise: the guard stopped it
    diagnosis = diagnose(history)
    assert diagnosis.code == "GL307" and "0.5 -> 0.05" in diagnosis.findings[0].advice
    assert not LONG_NUMBER.search(str(diagnosis))


def test_advice_names_best_pt_only_when_it_is_known_to_exist():
    history = history_of([1.0, 0.5, 0.3, float("nan")])
    assert "best.pt" not in str(diagnose(history))
    assert "best.pt holds epoch 3 (train_loss 0.3)" in diagnose(history, best_checkpoint=True).findings[0].advice
    assert "no best.pt" in diagnose(history, best_checkpoint=False).findings[0].advice
    overfit = diagnose(LESSON_OVERFITTING, best_checkpoint=True).findings[0].advice
    assert "epoch 30 (best.pt)" in overfit
    assert "best.pt" not in diagnose(LESSON_OVERFITTING, best_checkpoint=False).findings[0].advice


@pytest.mark.parametrize(("label", "index", "train", "val"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_values_called_best_or_lowest_were_recorded(label, index, train, val):
    """Issue 12 item 3: a smoothed value is never labelled "best"; what is smoothed says so."""
    diagnosis = diagnose(records(train, val))
    text = str(diagnosis)
    assert "best.pt" not in text  # plain records: no checkpoint is known
    recorded = {f"{v:.4g}" for v in np.r_[train, [] if val is None else val]}
    quoted = re.findall(r"(?:best|lowest) (?:at epoch \d+ )?\(?([-0-9.e+]+[0-9])", text)
    quoted += re.findall(r"(?:best|lowest) epoch \d+ \((?:\w+ )?([-0-9.e+]+[0-9])", text)
    for value in quoted:
        assert value in recorded, (value, text)


# ------------------------------------------------------------------------------------------ one epoch convention


def test_code_records_starting_at_epoch_0_are_shown_one_based():
    rows = [{"epoch": e, "train_loss": 1.0 / (1 + e), "val_loss": 1.1 / (1 + e)} for e in range(5)]
    diagnosis = diagnose(rows)  # History.records passed as a list: 0-based in code
    assert diagnosis.best_epoch == 5 and diagnosis.to_dict()["best_epoch"] == 5
    assert diagnosis.tags()["glassloop.best_epoch"] == "5"
    assert diagnosis.to_dict()["epoch_numbering"] == "1-based"


def test_history_csv_is_one_based_and_loads_back_zero_based(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text("epoch,train_loss,val_loss,lr\n1,1.0,1.1,0.1\n2,0.5,0.6,0.1\n3,0.4,0.7,0.1\n")
    history = load_history(run)
    assert [r["epoch"] for r in history.records] == [0, 1, 2] and history.best_epoch == 1
    diagnosis = diagnose(history)
    assert diagnosis.best_epoch == 2  # the file's own number for its best row
    as_json = glassloop("diagnose", str(run), "--format", "json")
    assert json.loads(as_json.stdout)["best_epoch"] == 2


def test_an_older_zero_based_history_csv_still_reads(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,train_loss\n0,1.0\n1,0.5\n2,0.4\n")
    history = load_history(tmp_path / "history.csv")
    assert [r["epoch"] for r in history.records] == [0, 1, 2]
    assert diagnose(history).best_epoch == 3


def test_diagnose_dir_reads_the_stop_reason_and_knows_there_is_no_best_pt(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text("epoch,train_loss,val_loss\n1,2.5e+21,9.9e+22\n")
    (run / "config.json").write_text("{}")
    (run / "summary.json").write_text(json.dumps({"network": {"stop_reason": "non-finite loss (inf) at epoch 2, "
                                                                             "batch 1, step 9; no update"}}))  # fmt: skip
    assert load_history(run).stop_reason.startswith("non-finite loss")
    result = glassloop("diagnose", str(run))
    assert result.returncode == 0, result.stderr
    assert "diverging (GL307)" in result.stdout and "no best.pt" in result.stdout
    assert "best.pt holds" not in result.stdout
    (run / "best.pt").write_bytes(b"")
    assert "best.pt holds epoch 1" in glassloop("diagnose", str(run)).stdout
