"""load_teacher: one spec syntax for every teacher; clear errors for everything it cannot use."""

import json

import pytest
import torch
from torch import nn

from edgekd.data.spec import DataSpec
from edgekd.errors import TeacherError
from edgekd.teachers.base import Teacher
from edgekd.teachers.loading import (check_teacher, load_teacher, read_teacher_meta, write_teacher_folder)

SPEC = DataSpec(frames=4, size=16, class_names=("a", "b"))


class _Linear(Teacher):
    """A minimal teacher for the width checks: mean-pooled pixels through a Linear."""

    def __init__(self, dim: int, declared: int | None = None):
        super().__init__()
        self.proj = nn.Linear(3, dim)
        self.embed_dim = declared if declared is not None else dim
        self.config = {}

    def _embed(self, x):
        return self.proj(x.mean(dim=(2, 3, 4)))


def test_width_checks():
    check_teacher(_Linear(8), SPEC)
    with pytest.raises(TeacherError, match="declares embed_dim=9 but embed\\(\\) returns shape \\(1, 8\\)"):
        check_teacher(_Linear(8, declared=9), SPEC)
    with pytest.raises(TeacherError, match="a student projector needs an integer in 1..8192"):
        check_teacher(_Linear(8, declared=100_000), SPEC, probe=False)
    with pytest.raises(TeacherError, match="width 0"):
        check_teacher(_Linear(8, declared=0), SPEC, probe=False)


def test_teacher_folder_round_trip_and_unknown_type(tmp_path):
    t = _Linear(8)
    folder = write_teacher_folder(tmp_path / "t", type="mystery", config={}, state_dict=t.state_dict(),
                                  data_spec=SPEC)
    _, meta = read_teacher_meta(folder)
    assert meta["format"] == "edgekd-teacher" and len(meta["weights_sha256"]) == 64
    with pytest.raises(TeacherError, match="unknown teacher type 'mystery'"):
        load_teacher(folder, SPEC)
    # a loader outside edgekd.teachers is never imported
    meta["loader"] = "os:system"
    (folder / "teacher.json").write_text(json.dumps(meta))
    with pytest.raises(TeacherError, match="unknown teacher type"):
        load_teacher(folder, SPEC)


def test_damaged_teacher_json(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "teacher.json").write_text('{"format": "edgekd-teacher",\n oops}')
    with pytest.raises(TeacherError, match="teacher.json:2: invalid JSON"):
        load_teacher(folder, SPEC)


@pytest.mark.parametrize("spec, message", [
    ("no/such/teacher", "no teacher at no/such/teacher"),
    ("clip-vit-b-32", "unknown teacher 'clip-vit-b-32'"),
    ("open_clip:ViT-B-32", "is incomplete"),
    ("embedded:teacherish", "unknown embedded teacher"),
    ("https://example.com/model.pt", "downloads nothing"),
])
def test_specs_that_name_nothing_usable(spec, message):
    with pytest.raises(TeacherError, match=message) as e:
        load_teacher(spec, SPEC)
    assert e.value.hint


def test_folder_with_nothing_recognizable(tmp_path):
    (tmp_path / "readme.txt").write_text("weights go here")
    with pytest.raises(TeacherError, match="holds no teacher"):
        load_teacher(tmp_path, SPEC)


def test_bare_state_dict_gets_an_open_clip_hint(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(TeacherError) as e:
        load_teacher(path, SPEC)
    assert f"open_clip:ARCH:{path}" in e.value.hint


def test_an_edgekd_run_is_a_teacher(tmp_path):
    from edgekd.checkpoint import save_checkpoint
    from edgekd.students import build_student

    student = build_student("tiny3d", num_classes=2, frames=4, size=16, width=0.25)
    save_checkpoint(tmp_path / "run" / "checkpoint.pt", student_name="tiny3d", student_kwargs=student.config,
                    state_dict=student.state_dict(), data_spec=SPEC, config={}, metrics={})
    teacher = load_teacher(tmp_path / "run", SPEC)
    x = torch.randn(2, *SPEC.input_shape()[1:])
    assert teacher.embed(x).shape == (2, teacher.embed_dim) and teacher.logits(x).shape == (2, 2)
    assert teacher.source == str(tmp_path / "run")


def test_loading_never_builds_an_embedded_teacher():
    """embedded:NAME is built by the caller's `embedded` step (edgekd.pretrain.embedded); load_teacher only asks it."""
    with pytest.raises(TeacherError, match="built for a dataset and split") as e:
        load_teacher("embedded:vl", SPEC)
    assert "edgekd distill" in e.value.hint
    asked, built = [], _Linear(8)
    assert load_teacher("embedded:invariant", SPEC, embedded=lambda name: asked.append(name) or built) is built
    assert asked == ["invariant"] and built.source == "embedded:invariant"


def test_a_folder_written_before_the_pretrain_move_still_loads(tmp_path):
    """teacher.json of older SSL teachers names edgekd.teachers.timebalance:from_folder, which is gone."""
    from edgekd.teachers.ssl_teacher import SSLTeacher, build_ssl_teacher

    folder = build_ssl_teacher("invariant", SPEC, backbone_kwargs={"width": 0.25}).save(tmp_path / "t")
    meta = json.loads((folder / "teacher.json").read_text())
    meta["loader"] = "edgekd.teachers.timebalance:from_folder"
    (folder / "teacher.json").write_text(json.dumps(meta))
    assert isinstance(load_teacher(folder, SPEC, probe=False), SSLTeacher)
