"""student.init: a student's backbone starts from a self-supervised teacher folder, whole or not at all."""

from __future__ import annotations

import pytest
import torch

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError

SPEC = DataSpec(frames=8, size=32, class_names=("a", "b", "c", "d"))


def _ssl_folder(tmp_path, name="ssl", backbone="tiny3d", kwargs=None, seed=1):
    """A TimeBalance teacher folder with random (but seeded, so recognisable) weights."""
    from edgekd.teachers.ssl_teacher import build_ssl_teacher

    torch.manual_seed(seed)
    teacher = build_ssl_teacher("invariant", SPEC, backbone, kwargs or {"width": 0.25})
    for p in teacher.parameters():  # BN weights start at exactly 1: make every tensor distinct from a fresh init
        p.data.add_(torch.randn_like(p) * 0.1)
    return teacher.save(tmp_path / name), teacher


def _student(**kwargs):
    from edgekd.students import build_student

    torch.manual_seed(0)
    return build_student("tiny3d", num_classes=4, frames=8, size=32, **({"width": 0.25} | kwargs))


def test_init_loads_every_backbone_tensor(tmp_path):
    from edgekd.distill.student_init import apply_backbone_init, read_backbone_init

    folder, teacher = _ssl_folder(tmp_path)
    student = _student(dropout=0.5)  # dropout has no weights: a fine-tune may choose its own
    head_before = student.head.weight.clone()
    count = apply_backbone_init(student, read_backbone_init(folder, "tiny3d", {"width": 0.25, "dropout": 0.5}), folder)
    source = teacher.backbone.net.state_dict()
    backbone = {k: v for k, v in student.state_dict().items() if not k.startswith("head.")}
    assert count == len(backbone) == len(source)
    for k, v in backbone.items():
        assert torch.equal(v, source[k]), k
    assert torch.equal(student.head.weight, head_before)  # the classifier keeps its fresh init


@pytest.mark.parametrize("student, kwargs, words", [
    ("tiny3d", {"width": 0.5}, "width"),
    ("tiny3d", {"width": 0.25, "depth": 2}, "depth"),
    ("mobilenet_v3_small_tsm", {}, "mobilenet_v3_small_tsm"),
])
def test_init_refuses_another_architecture(tmp_path, student, kwargs, words):
    from edgekd.distill.student_init import read_backbone_init

    folder, _ = _ssl_folder(tmp_path)
    with pytest.raises(ConfigError) as e:
        read_backbone_init(folder, student, kwargs)
    msg = e.value.message
    assert str(folder) in msg and words in msg and "\n" not in msg
    assert "student.name=tiny3d" in e.value.hint


def test_init_refuses_missing_or_extra_weights(tmp_path):
    """A folder whose teacher.json matches but whose weights do not is refused, never half-loaded."""
    from edgekd.distill.student_init import apply_backbone_init, read_backbone_init

    folder, _ = _ssl_folder(tmp_path)
    state = read_backbone_init(folder, "tiny3d", {"width": 0.25})
    dropped = dict(state)
    dropped.pop(next(iter(dropped)))
    with pytest.raises(ConfigError, match="1 missing"):
        apply_backbone_init(_student(), dropped, folder)
    with pytest.raises(ConfigError, match="1 extra"):
        apply_backbone_init(_student(), {**state, "stages.9.weight": torch.zeros(1)}, folder)
    with pytest.raises(ConfigError, match="another shape"):
        apply_backbone_init(_student(width=0.5), state, folder)


def test_init_refuses_a_folder_without_backbone(tmp_path):
    from edgekd.distill.student_init import read_backbone_init

    with pytest.raises(ConfigError, match="no such folder"):
        read_backbone_init(tmp_path / "nope", "tiny3d", {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a teacher folder"):
        read_backbone_init(tmp_path / "empty", "tiny3d", {})


def test_distill_starts_from_student_init(tmp_path, overrides):
    """--set student.init=PATH reaches the training loop: with a vanishing learning rate the trained
    student's convolutions are still the folder's."""
    from edgekd.distill.config import load_config
    from edgekd.distill.train import distill

    folder, teacher = _ssl_folder(tmp_path)
    cfg = load_config(None, overrides + ["recipe.name=supervised", "train.epochs=1", "optim.lr=1e-12",
                                         "optim.weight_decay=0", f"student.init={folder}"])
    run = distill(cfg)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    source = teacher.backbone.net.state_dict()
    convs = [k for k in source if k.endswith("0.weight") and source[k].dim() == 5]
    assert convs
    for k in convs:
        assert torch.allclose(ckpt["state_dict"][k], source[k], atol=1e-6), k
    bad = load_config(None, overrides + ["recipe.name=supervised", f"student.init={folder}", "student.width=0.5"])
    with pytest.raises(ConfigError, match="width"):
        distill(bad)
