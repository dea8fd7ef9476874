"""The embedded teachers: each built on demand once per dataset + split + recipe under $EDGEKD_HOME, then reused."""

import dataclasses
import json

import pytest
import torch

from edgekd.data.manifest import default_data_spec
from edgekd.data.splits import make_split
from edgekd.errors import DataError, TeacherError
from edgekd.pretrain.embedded import default_teachers, load_embedded
from edgekd.pretrain.embedded_config import BUILD_FILE, EmbeddedConfig, teacher_folder

# a recipe small enough for a test: one epoch of everything on the tiny dataset
TINY = EmbeddedConfig(net_size=16, vl={"epochs": 1, "width": 0.25}, ssl_width=0.25, ssl_epochs=1, ssl_batch_size=8,
                      ssl_finetune_epochs=1)


def _stamps(root):
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("teacher.json")}


def test_teachers_are_built_on_demand_once_then_reused(tiny_manifest, edgekd_home):
    split = make_split(tiny_manifest, labeled_per_class=2)
    spec = default_data_spec(tiny_manifest)
    teachers = default_teachers(tiny_manifest, split, spec, names=("invariant",), config=TINY)
    assert set(teachers) == {"invariant"}
    built = list((edgekd_home / "teachers").glob("*/*/" + BUILD_FILE))
    assert [p.parent.name.split("-")[0] for p in built] == ["invariant"]   # nothing the caller did not ask for

    teachers = default_teachers(tiny_manifest, split, spec, config=TINY)
    assert set(teachers) == {"vl", "invariant", "distinctive"}
    x = torch.randn(2, 3, spec.frames, spec.size, spec.size)     # the run's batch, resized inside
    for name, t in teachers.items():
        assert t.logits(x).shape == (2, spec.num_classes), name   # fine-tuned: a head over the classes
        assert t.embed(x).shape == (2, t.embed_dim)
        folder = teacher_folder(name, tiny_manifest, split, TINY)
        assert folder.parent.parent == edgekd_home / "teachers"
        record = json.loads((folder / BUILD_FILE).read_text())
        assert record["teacher"] == name and record["total_seconds"] > 0
        assert record["unlabeled_videos"] == len(split.unlabeled)

    stamp = _stamps(edgekd_home)
    again = load_embedded("invariant", tiny_manifest, split, spec, config=TINY)
    assert _stamps(edgekd_home) == stamp                           # nothing rebuilt
    assert again.fingerprint == teachers["invariant"].fingerprint
    # another split is another set of teachers; another VL recipe leaves the SSL teachers' folders alone
    other = make_split(tiny_manifest, labeled_per_class=1)
    assert teacher_folder("invariant", tiny_manifest, other, TINY) != teacher_folder("invariant", tiny_manifest, split, TINY)
    wider = dataclasses.replace(TINY, vl={"epochs": 1, "width": 0.5})
    assert teacher_folder("vl", tiny_manifest, split, wider) != teacher_folder("vl", tiny_manifest, split, TINY)
    assert teacher_folder("invariant", tiny_manifest, split, wider) == teacher_folder("invariant", tiny_manifest, split, TINY)
    with pytest.raises(TeacherError, match="unknown embedded teacher"):
        load_embedded("invariantt", tiny_manifest, split, spec, config=TINY)


def test_vl_teacher_without_captions_learns_from_class_name_prompts(tiny_manifest, edgekd_home):
    bare = tiny_manifest.subset(dataclasses.replace(e, caption=None) for e in tiny_manifest.entries)
    split = make_split(bare, labeled_per_class=2)
    with pytest.raises(DataError, match="from captions"):
        default_teachers(bare, split, names=("vl",), config=dataclasses.replace(TINY, vl_text="captions"))
    teacher = load_embedded("vl", bare, split, config=TINY)                       # auto -> prompts
    folder = teacher_folder("vl", bare, split, TINY)
    meta = json.loads((folder / "pretrained" / "teacher.json").read_text())
    assert meta["config"]["pretrain"]["text"] == "prompts"
    assert meta["metrics"]["train_videos"] == len(split.labeled)                  # only videos whose class is known
    assert teacher.num_classes == bare.num_classes
    assert teacher_folder("vl", tiny_manifest, split, TINY) != folder              # captions: another teacher


def test_ssl_teacher_trains_on_the_videos_that_decode_and_says_how_many_steps(tmp_path, edgekd_home):
    # 5 unlabeled videos listed, 2 of them undecodable: a batch of min(32, listed) = 5 would fill no
    # batch from the 3 that decode, and the teacher would be saved untrained
    import io

    from rich.console import Console

    from edgekd.data.fixtures import bad_videos, make_ucf101
    from edgekd.data.manifest import load_dataset
    from edgekd.data.splits import SemiSplit
    from edgekd.report import Reporter

    split_dir = make_ucf101(tmp_path / "ucf", per_class=3, frames=12, size=(32, 48))
    manifest = load_dataset(split_dir)
    bad = {str(p) for p in bad_videos(split_dir).values()}
    train = manifest.split("train").entries
    labeled = [e.video_id for e in train if e.path.name.endswith("g02_c01.avi")]  # one per class
    split = SemiSplit(labeled, [e.video_id for e in train if e.video_id not in labeled])
    unlabeled = [e for e in train if e.video_id in split.unlabeled]
    assert len(unlabeled) == 5 and sum(str(e.path) in bad for e in unlabeled) == 2

    buf = io.StringIO()
    config = dataclasses.replace(TINY, ssl_epochs=2, ssl_batch_size=32)
    default_teachers(manifest, split, names=("invariant",), config=config,
                     reporter=Reporter(Console(file=buf, width=300)))
    folder = teacher_folder("invariant", manifest, split, config)
    meta = json.loads((folder / "pretrained" / "teacher.json").read_text())
    assert meta["config"]["pretrain"]["batch_size"] == 3    # the videos that decode
    assert meta["metrics"]["steps"] == 2                     # one batch of 3 per epoch
    assert all(loss > 0 for loss in meta["metrics"]["loss_per_epoch"])
    tuned_steps = json.loads((folder / "tuned" / "teacher.json").read_text())["metrics"]["steps"]
    assert tuned_steps == 1                                                   # ssl_finetune_epochs=1, one batch
    assert json.loads((folder / BUILD_FILE).read_text())["steps"] == {"pretrain": 2, "finetune": 1}
    assert "embedded invariant teacher ready in" in buf.getvalue()
    assert "2 pretraining + 1 fine-tuning steps" in buf.getvalue()
