"""The CLI on a run whose checkpoints were damaged after it finished (issue 13 item 2): `predict` on a bit-flipped
best.pt used to exit 0 with changed predictions; now `predict` and `resume` refuse in one line naming the file,
exit 2, and `resume` offers latest.prev.pt."""

import contextlib
import io

import glassloop.cli as cli
from glassloop.tabular.datasets import path as dataset_path


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def _flip_in_the_middle(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def test_predict_and_resume_refuse_damaged_checkpoints_in_one_line(tmp_path):
    crop, run = str(dataset_path("crop")), tmp_path / "run"
    code, _, stderr = _cli("fit", crop, "--target", "yield_t_ha", "--out", str(run), "--no-mlflow", "--baselines",
                           "linear", "--epochs", "3", "--patience", "50")
    assert code == 0, stderr
    assert (run / "latest.prev.pt").is_file()  # the state one epoch before the final latest.pt
    code, predictions, _ = _cli("predict", str(run), crop)
    assert code == 0 and predictions

    _flip_in_the_middle(run / "best.pt")
    code, stdout, stderr = _cli("predict", str(run), crop)
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and "best.pt is damaged" in stderr and "Traceback" not in stderr

    _flip_in_the_middle(run / "latest.pt")
    (run / "summary.json").unlink()  # else resume answers "already finished" from summary.json alone
    code, _, stderr = _cli("resume", str(run), "--no-mlflow")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "latest.pt is damaged" in stderr and f"mv {run / 'latest.prev.pt'} {run / 'latest.pt'}" in stderr
