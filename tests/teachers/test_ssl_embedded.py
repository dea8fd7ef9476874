"""The embedded teachers: built once per dataset + split + recipe under $EDGEKD_HOME, then reused."""

import json

import pytest
import torch

from edgekd.data.manifest import default_data_spec
from edgekd.data.splits import make_split
from edgekd.errors import TeacherError
from edgekd.teachers.embedded import BUILD_FILE, EmbeddedConfig, default_teachers, load_embedded, teachers_folder

# a recipe small enough for a test: one epoch of everything on the tiny dataset
TINY = EmbeddedConfig(net_size=16, vl={"epochs": 1, "width": 0.25}, ssl_width=0.25, ssl_epochs=1, ssl_batch_size=8,
                      ssl_finetune_epochs=1)


def test_default_teachers_build_once_then_reuse(tiny_manifest, edgekd_home):
    split = make_split(tiny_manifest, labeled_per_class=2)
    spec = default_data_spec(tiny_manifest)
    teachers = default_teachers(tiny_manifest, split, spec, config=TINY, progress=False)
    assert set(teachers) == {"vl", "invariant", "distinctive"}
    x = torch.randn(2, 3, spec.frames, spec.size, spec.size)     # the run's batch, resized inside
    for name, t in teachers.items():
        assert t.logits(x).shape == (2, spec.num_classes), name   # fine-tuned: a head over the classes
        assert t.embed(x).shape == (2, t.embed_dim)
    folder = teachers_folder(tiny_manifest, split, TINY)
    assert folder.parent == edgekd_home / "teachers"
    record = json.loads((folder / BUILD_FILE).read_text())
    assert set(record["test_top1"]) == {"vl", "invariant", "distinctive"}
    assert record["total_seconds"] > 0 and record["unlabeled_videos"] == len(split.unlabeled)

    stamp = {p.name: p.stat().st_mtime_ns for p in folder.rglob("teacher.json")}
    again = load_embedded("invariant", tiny_manifest, split, spec, config=TINY, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in folder.rglob("teacher.json")} == stamp   # nothing rebuilt
    assert again.fingerprint == teachers["invariant"].fingerprint
    # another split is another set of teachers
    assert teachers_folder(tiny_manifest, make_split(tiny_manifest, labeled_per_class=1), TINY) != folder
    with pytest.raises(TeacherError, match="unknown embedded teacher"):
        load_embedded("invariantt", tiny_manifest, split, spec, config=TINY)
