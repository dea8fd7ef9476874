"""Checkpoints, teacher weights and teacher folders are read with weights_only=True: a file whose
pickle would run code is refused before the code runs, and no error repeats torch's advice to
retry with weights_only=False."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgekd.checkpoint import load_checkpoint
from edgekd.errors import CheckpointError, EdgekdError, TeacherError
from edgekd.teachers.checkpoint_teacher import torchvision_teacher
from edgekd.teachers.loading import read_teacher_weights


class _TouchOnLoad:
    """Unpickling this calls open(marker, "w"): code from the file runs and leaves a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _loaders():
    """(name, load(path), error type, what the message calls the file)."""
    return [
        ("checkpoint", load_checkpoint, CheckpointError, "an edgekd checkpoint"),
        ("torchvision weights", lambda p: torchvision_teacher("r3d_18", p), TeacherError, "a weights file"),
        ("teacher folder", lambda p: read_teacher_weights(p.parent, {"weights": p.name}), TeacherError,
         "a teacher weights file"),
    ]


def _check(error: EdgekdError, path: Path, what: str) -> None:
    assert error.message.startswith(f"{path} is not {what} (or is damaged)")
    assert "\n" not in error.message and error.hint
    assert "weights_only" not in f"{error.message} {error.hint}"


@pytest.mark.parametrize("name,load,error,what", _loaders(), ids=[x[0] for x in _loaders()])
def test_a_pickle_that_would_run_code_is_refused_and_the_code_does_not_run(tmp_path, name, load, error, what):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"kind": "edgekd-student", "state_dict": {"w": torch.zeros(2)}, "x": _TouchOnLoad(marker)}, path)
    with pytest.raises(error) as e:
        load(path)
    assert not marker.exists(), "loading ran code from the file"
    _check(e.value, path, what)
    assert "would run code" in e.value.message
    # the file is live: a loader with weights_only=False would have run it
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("name,load,error,what", _loaders(), ids=[x[0] for x in _loaders()])
def test_damaged_or_foreign_files_get_one_line_and_a_fix(tmp_path, name, load, error, what):
    good = tmp_path / "good.pt"
    torch.save({"kind": "edgekd-student", "state_dict": {"w": torch.arange(1000.0)}}, good)
    data = good.read_bytes()
    for bad, content in (("garbage.pt", b"not a torch file at all" * 8), ("truncated.pt", data[: len(data) // 2]),
                         ("empty.pt", b"")):
        path = tmp_path / bad
        path.write_bytes(content)
        with pytest.raises(error) as e:
            load(path)
        _check(e.value, path, what)


def test_a_foreign_torch_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "state_dict.pt"
    torch.save({"w": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    _check(e.value, path, "an edgekd checkpoint")


def test_cli_prints_the_refusal_without_dangerous_advice(tmp_path, capsys):
    from edgekd.cli.main import main

    path = tmp_path / "run" / "checkpoint.pt"
    path.parent.mkdir()
    torch.save({"x": _TouchOnLoad(tmp_path / "code-ran")}, path)
    assert main(["eval", str(path.parent), "--workers", "0"]) != 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"{path} is not an edgekd checkpoint (or is damaged)" in text
    assert "weights_only" not in text and not (tmp_path / "code-ran").exists()
