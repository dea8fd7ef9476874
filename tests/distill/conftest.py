"""Fixtures for the distillation tests: tiny configs on the tiny synthetic dataset, tiny teachers."""

from __future__ import annotations

import pytest


@pytest.fixture
def overrides(tiny_synth, tmp_path):
    """`key=value` overrides for a short, deterministic CPU run (20 train / 4 test videos, 4 classes)."""
    return [f"data.path={tiny_synth}", "data.labeled=0.5", "data.workers=0", "data.augment=false",
            "student.width=0.25", "train.batch_size=4", "train.unlabeled_batch_size=4", "train.epochs=2",
            "train.device=cpu", "optim.warmup_epochs=0", f"run.dir={tmp_path / 'runs'}", "run.progress=false",
            "run.baseline=false"]


def make_teacher(spec, seed: int, head: bool = True, width: float = 0.25):
    """A random tiny3d teacher with a classifier head (what a fine-tuned teacher looks like)."""
    import torch
    from torch import nn

    from edgekd.students import build_student
    from edgekd.teachers.checkpoint_teacher import BackboneTeacher

    torch.manual_seed(seed)
    backbone = build_student("tiny3d", num_classes=spec.num_classes, frames=spec.frames, size=spec.size, width=width)
    d = backbone.feature_dim
    return BackboneTeacher(backbone, d, spec, {"test_teacher": seed}, head=nn.Linear(d, spec.num_classes) if head else None,
                           num_classes=spec.num_classes if head else None)


@pytest.fixture
def teacher_factory():
    return make_teacher


@pytest.fixture(scope="session")
def tiny_spec(tiny_synth):
    from edgekd.data.manifest import Manifest, default_data_spec

    return default_data_spec(Manifest.load(tiny_synth))


@pytest.fixture(scope="session")
def tiny_teachers(tiny_spec):
    vl = make_teacher(tiny_spec, 1, width=0.5)  # a wider teacher: the projector maps 32 -> 64
    return {"vl": vl, "kd": vl, "invariant": make_teacher(tiny_spec, 2), "distinctive": make_teacher(tiny_spec, 3)}



@pytest.fixture
def broken_ucf(tmp_path):
    """A UCF101-layout set (3 classes, 15 good train / 3 test videos) with two training videos that fail
    to decode (edgekd.data.fixtures; its empty file is dropped when the dataset loads). Fields: dir (the
    split folder), good (ids of the good train videos, class by class), bad (kind -> id of the "truncated"
    and "not a video" ones), split(labeled ids) -> a split file leaving the other train videos unlabeled."""
    from types import SimpleNamespace

    from edgekd.data.fixtures import bad_videos, make_ucf101
    from edgekd.data.manifest import load_dataset
    from edgekd.data.splits import SemiSplit

    split_dir = make_ucf101(tmp_path / "ucf", per_class=6, frames=12, size=(48, 64))
    kinds = {str(p): kind for kind, p in bad_videos(split_dir).items()}
    train = load_dataset(split_dir).split("train").entries
    ids = [e.video_id for e in train]

    def split(labeled: list[str]):
        return SemiSplit(labeled, [v for v in ids if v not in labeled]).save(tmp_path / "split.txt")

    return SimpleNamespace(dir=split_dir, good=[e.video_id for e in train if str(e.path) not in kinds],
                           bad={kinds[str(e.path)]: e.video_id for e in train if str(e.path) in kinds}, split=split)
