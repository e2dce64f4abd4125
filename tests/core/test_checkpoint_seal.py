"""Verified checkpoints (issue 13 item 2): the sha256 seal, real bit flips, the previous good state, and the
files a run directory holds (atomic, never through a link, temporaries of dead writers removed)."""

import os
import struct
import subprocess
import sys
import zipfile

import pytest
import torch
from torch import nn

import glassloop as gl
from glassloop.core.checkpoint import SEAL_LENGTH, SEAL_MARK, envelope, seal_status, serialize
from glassloop.errors import CheckpointError


def _data():
    torch.manual_seed(1)
    x = torch.rand(64, 4)
    y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(64, 1)
    return (x[:48], y[:48]), (x[48:], y[48:])


def _fit(run_dir, epochs=3, resume=False, callbacks=(), **options):
    (x, y), val = _data()
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
    history = gl.fit(model, (x, y), val=val, epochs=epochs, batch_size=16, seed=4, verbose=False,
                     callbacks=[*callbacks, gl.Checkpoint(run_dir, resume=resume, plot=False)], **options)
    return model, history


def _flip(data: bytes, offset: int) -> bytes:
    flipped = bytearray(data)
    flipped[offset] ^= 1 << (offset % 8)  # one bit, a different one at each offset
    return bytes(flipped)


def _tensor_data_ranges(path):
    """Byte ranges of the stored tensors (the zip's data/ members) inside a torch checkpoint."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if "/data/" in info.filename:
                with open(path, "rb") as handle:
                    handle.seek(info.header_offset + 26)
                    name_length, extra_length = struct.unpack("<HH", handle.read(4))
                start = info.header_offset + 30 + name_length + extra_length
                yield range(start, start + info.compress_size)


def _refused(path, data) -> str:
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as info:
        gl.load_checkpoint(path)
    return str(info.value)


def test_sealed_files_load_with_plain_torch_and_verify(tmp_path):
    _fit(tmp_path)
    for name in ("best.pt", "latest.pt"):
        data = (tmp_path / name).read_bytes()
        assert seal_status(data) == "verified"
        assert data[-SEAL_LENGTH:].startswith(SEAL_MARK)
        assert zipfile.ZipFile(tmp_path / name).comment.startswith(SEAL_MARK)
    state_dict = torch.load(tmp_path / "best.pt", weights_only=True)["model"]  # what users do with best.pt
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
    model.load_state_dict(state_dict)
    assert gl.load_checkpoint(tmp_path / "best.pt")["version"] == 2


def test_every_flipped_byte_of_best_pt_tensor_data_is_refused_and_a_sample_elsewhere(tmp_path):
    _fit(tmp_path / "run")
    source = tmp_path / "run" / "best.pt"
    data = source.read_bytes()
    tensor_offsets = {o for r in _tensor_data_ranges(source) for o in r}
    assert len(tensor_offsets) == 4 * (16 + 4 + 4 + 1)  # every float32 of the weights
    target = tmp_path / "flipped_best.pt"
    for offset in sorted(tensor_offsets | set(range(0, len(data), 7))):  # header, pickle, directory, seal too
        message = _refused(target, _flip(data, offset))
        assert "\n" not in message and "flipped_best.pt" in message, (offset, message)


def test_every_flipped_byte_of_latest_pt_weights_and_moments_is_refused(tmp_path):
    _fit(tmp_path / "run")
    source = tmp_path / "run" / "latest.pt"
    data = source.read_bytes()
    ranges = sorted(_tensor_data_ranges(source), key=len)
    # the packed buffers: float32 (weights + Adam moments) in full, the larger RNG-state buffers sampled
    offsets = {o for r in ranges if len(r) <= 1024 for o in r} | {o for r in ranges if len(r) > 1024 for o in r[::61]}
    assert sum(len(r) <= 1024 for r in ranges) >= 1 and len(offsets) > 4 * 3 * 25
    target = tmp_path / "latest.pt"
    for offset in sorted(offsets | set(range(0, len(data), 211))):
        message = _refused(target, _flip(data, offset))
        assert "\n" not in message and "latest.pt" in message, (offset, message)


def test_a_damaged_latest_offers_the_previous_good_state_and_resuming_from_it_is_exact(tmp_path):
    reference, ref_history = _fit(tmp_path / "reference", epochs=5)

    class CrashAt:
        def on_epoch_start(self, state):
            if state.epoch == 3:
                raise RuntimeError("simulated crash")

    run = tmp_path / "run"
    with pytest.raises(gl.CallbackError):
        _fit(run, epochs=5, callbacks=[CrashAt()])
    assert gl.load_checkpoint(run / "latest.prev.pt")["epoch"] == 2  # one write before latest.pt's 3
    latest = run / "latest.pt"
    latest.write_bytes(_flip(latest.read_bytes(), 1234))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(CheckpointError) as info:
        _fit(run, epochs=5, resume=True)
    message = str(info.value)
    assert "\n" not in message and "latest.pt is damaged" in message
    assert f"mv {run / 'latest.prev.pt'} {latest}" in message and "(2 epochs done)" in message
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # refused before anything was written
    os.replace(run / "latest.prev.pt", latest)  # what the message offers
    resumed, history = _fit(run, epochs=5, resume=True)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in history.records] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in ref_history.records]


def test_a_version_2_file_without_its_seal_is_damaged_and_a_version_1_file_still_loads(tmp_path):
    _fit(tmp_path)
    data = (tmp_path / "best.pt").read_bytes()
    stripped = data[:-SEAL_LENGTH - 2] + b"\0\0"  # the seal cut away: torch still reads the archive
    torch.load(__import__("io").BytesIO(stripped), weights_only=True)
    assert "seal is missing" in _refused(tmp_path / "stripped.pt", stripped)
    legacy = tmp_path / "legacy.pt"  # written by glassloop before the seal: read, unverified
    legacy.write_bytes(serialize({**envelope("best"), "version": 1, "model": {"w": torch.ones(2)}}))
    assert torch.equal(gl.load_checkpoint(legacy)["model"]["w"], torch.ones(2))


def test_a_foreign_checkpoint_with_the_same_parameter_count_is_one_line(tmp_path):
    (x, y), val = _data()
    first = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
    gl.fit(first, (x, y), val=val, epochs=1, verbose=False, callbacks=[gl.Checkpoint(tmp_path, plot=False)])
    other = nn.Sequential(nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 1))  # same class and count, other keys
    with pytest.raises(CheckpointError) as info:
        gl.fit(other, (x, y), val=val, epochs=2, verbose=False, callbacks=[gl.Checkpoint(tmp_path, resume=True)])
    assert "\n" not in str(info.value) and "does not fit this fit" in str(info.value)


def test_no_file_is_written_through_a_link_planted_in_the_run_directory(tmp_path):
    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir()
    outside.mkdir()
    names = ["latest.pt", "best.pt", "history.csv", "curves.png", "latest.prev.pt"]
    for name in names + [f".latest.pt.tmp-{os.getpid()}", f".history.csv.tmp-{os.getpid()}"]:
        (outside / name).write_text("victim")
        (run / name).symlink_to(outside / name)
    (x, y), val = _data()
    gl.fit(nn.Linear(4, 1), (x, y), val=val, epochs=3, verbose=False, callbacks=[gl.Checkpoint(run)])
    assert all((outside / name).read_text() == "victim" for name in os.listdir(outside))
    for name in names:
        assert (run / name).is_file() and not (run / name).is_symlink(), name
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]


def test_resume_removes_temporaries_of_dead_writers_only(tmp_path):
    _fit(tmp_path, epochs=2)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [tmp_path / f".history.csv.tmp-{dead}", tmp_path / f".latest.pt.tmp-{dead}",
                 tmp_path / f".curves.png.tmp-{dead}"]
        for path in stale:
            path.write_bytes(b"half")
        busy = tmp_path / f".latest.pt.tmp-{live.pid}"
        busy.write_bytes(b"being written")
        _fit(tmp_path, epochs=3, resume=True)
        assert not any(path.exists() for path in stale)
        assert busy.read_bytes() == b"being written"  # another live process may be writing it
    finally:
        live.kill()
        live.wait()


def test_history_csv_is_always_complete_and_one_based(tmp_path):
    seen = []

    class ReadHistory:  # reporters band: after the Checkpoint handed history.csv to its writer thread
        band = "reporters"

        def on_epoch_end(self, state):
            path = tmp_path / "history.csv"
            if path.exists():
                lines = path.read_text().splitlines()
                seen.append(lines)
                assert all(line.count(",") == lines[0].count(",") for line in lines)  # never half a row

    _, history = _fit(tmp_path, epochs=6, callbacks=[ReadHistory()])
    text = (tmp_path / "history.csv").read_text()
    assert text == history.to_csv()
    assert [line.split(",")[0] for line in text.splitlines()[1:]] == ["1", "2", "3", "4", "5", "6"]
    assert seen and all(lines[0].startswith("epoch,") for lines in seen)


def test_best_pt_never_holds_non_finite_weights_and_no_best_pt_is_explained(tmp_path, capsys):
    class PoisonBuffer:  # a buffer the forward pass ignores: the loss stays finite and improving
        def on_epoch_end(self, state):
            if state.epoch == 2:
                state.model[0].register_buffer("scale", torch.tensor(float("inf")))

    _fit(tmp_path / "a", epochs=4, callbacks=[PoisonBuffer()])
    best = gl.load_checkpoint(tmp_path / "a" / "best.pt")
    assert best["epoch"] < 2 and all(torch.isfinite(t).all() for t in best["model"].values())
    assert "epoch 3 has non-finite weights; best.pt keeps the previous best" in capsys.readouterr().err

    (x, y), _ = _data()
    history = gl.fit(nn.Linear(4, 1), (x * 1e6, y), optimizer="sgd", lr=10.0, epochs=5, verbose=False,
                     callbacks=[gl.Checkpoint(tmp_path / "b", plot=False)])
    assert history.stop_reason.startswith("non-finite") and history.best_epoch is None
    assert not (tmp_path / "b" / "best.pt").exists()
    assert "no best.pt in" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="diverged from its first epoch has none"):
        gl.load_checkpoint(tmp_path / "b" / "best.pt")
