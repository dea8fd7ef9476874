"""Folders edgekd cannot read or write: one error line naming the folder and the fix (exit 2), found
before any teacher is built or any epoch trained. The CLI runs where permissions hold (unprivileged.py)."""

from __future__ import annotations

import shutil

import pytest

from unprivileged import edgekd_cli


@pytest.fixture
def locked(tmp_path):
    """lock(path, mode): chmod for this test, the permissions restored afterwards (so tmp_path can be removed)."""
    changed = []

    def lock(path, mode):
        changed.append((path, path.stat().st_mode))
        path.chmod(mode)
        return path

    yield lock
    for path, mode in reversed(changed):
        path.chmod(mode)


def _error(r) -> tuple[str, str]:
    """The run's last two lines: one error line and one hint line, exit code 2."""
    lines = r.stderr.strip().splitlines()[-2:]
    assert r.returncode == 2 and [ln.split(":")[0] for ln in lines] == ["error", "hint"], r.stderr
    return lines[0], lines[1]


@pytest.fixture
def videos(tiny_synth, tmp_path):
    """A private copy of the tiny dataset's class folders (a folder dataset, no captions)."""
    return shutil.copytree(tiny_synth.parent / "videos", tmp_path / "videos")


def test_unreadable_class_folder_or_dataset_is_named(videos, locked, tmp_path):
    cls = locked(next(p for p in sorted(videos.iterdir())), 0o000)
    error, hint = _error(edgekd_cli(["data", "inspect", str(videos)]))
    assert error == f"error: cannot read the folder {cls}: permission denied" and "readable" in hint
    locked(videos, 0o000)
    error, _ = _error(edgekd_cli(["distill", "--data", str(videos), "--set", f"run.dir={tmp_path / 'runs'}"]))
    assert error == f"error: cannot read the folder {videos}: permission denied"


def test_read_only_runs_folder_fails_before_any_teacher_is_built(tiny_synth, locked, tmp_path):
    ro, home = tmp_path / "ro", tmp_path / "home"
    ro.mkdir()
    locked(ro, 0o555)
    error, hint = _error(edgekd_cli(["distill", "--data", str(tiny_synth), "--epochs", "2", "--workers", "0",
                                     "--set", f"run.dir={ro / 'runs'}"], env={"EDGEKD_HOME": str(home)}))
    assert error == f"error: the runs folder {ro / 'runs'} cannot be created: {ro} is not writable"
    assert "--set run.dir=" in hint
    assert not home.exists()  # no teacher was built on the way


def test_read_only_edgekd_home_is_named_before_its_teacher_is_built(tiny_synth, locked, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    locked(home, 0o555)
    error, hint = _error(edgekd_cli(["distill", "--data", str(tiny_synth), "--epochs", "2", "--workers", "0",
                                     "--set", f"run.dir={tmp_path / 'runs'}"], env={"EDGEKD_HOME": str(home)}))
    assert error.startswith(f"error: cannot write {home}") and error.endswith("permission denied")
    assert f"$EDGEKD_HOME ({home})" in hint and "set EDGEKD_HOME" in hint
    assert not (tmp_path / "runs").exists()
