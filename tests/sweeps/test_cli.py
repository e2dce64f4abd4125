"""`glassloop sweep DATA` takes glassloop fit's data flags (one shared parser), and --scheduler/--run-dir/--resume."""

from __future__ import annotations

import csv

from glassloop.cli import main


def table(path) -> None:
    rows = [f"{i},{(i * 7) % 5},{i % 3},2024-01-{1 + i % 28:02d},{2 * i + (i % 3)}" for i in range(60)]
    path.write_text("a,b,c,day,y\n" + "\n".join(rows) + "\n")


def test_data_flags_mean_what_they_mean_for_fit(tmp_path, capsys):
    table(tmp_path / "t.csv")
    out = tmp_path / "sweep.csv"
    code = main(["sweep", str(tmp_path / "t.csv"), "--target", "y", "--features", "a,b", "--split", "temporal",
                 "--time-column", "day", "--val-fraction", "0.25", "--seeds", "2", "--epochs", "2", "--hidden", "4",
                 "--scheduler", "cosine", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and {row["best_epoch"] for row in rows} <= {"1", "2"}  # 1-based in the file
    assert "best: configuration" in capsys.readouterr().out


def test_data_flags_errors_are_one_line_exit_2(tmp_path, capsys):
    table(tmp_path / "t.csv")
    assert main(["sweep", str(tmp_path / "t.csv"), "--target", "y", "--features", "a,nope", "--quiet"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["sweep", "--workload", "linreg", "--features", "a"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--features needs a DATA file" in err
    assert main(["sweep", "--workload", "linreg", "--resume"]) == 2
    assert "--resume needs --run-dir" in capsys.readouterr().err


def test_run_dir_and_resume_from_the_command_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["sweep", "--workload", "linreg", "--seeds", "2", "--epochs", "3", "--quiet", "--run-dir", str(run_dir)]
    assert main(argv) == 0
    first = (run_dir / "sweep.csv").read_text()
    assert main(argv) == 2  # the sweep is there: refusing to overwrite it, in the command line's own words
    err = capsys.readouterr().err
    assert "pass --resume" in err and "resume=True" not in err and len(err.strip().splitlines()) == 1
    assert main([*argv, "--resume"]) == 0
    assert "already finished" in capsys.readouterr().out and (run_dir / "sweep.csv").read_text() == first
