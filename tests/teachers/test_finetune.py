"""Fine-tuning a teacher on the labeled split: linear probe and full, saved and re-loaded."""

import dataclasses
import json

import pytest
import torch

from edgekd.data.manifest import default_data_spec
from edgekd.errors import DataError, TeacherError
from edgekd.pretrain.finetune import FinetuneConfig, finetune_teacher, init_head
from edgekd.teachers.loading import load_teacher
from vl_tiny import open_clip_checkpoint

FAST = dict(clips_per_video=1, num_workers=0, quiet=True)


@pytest.fixture(scope="module")
def base_spec(tmp_path_factory):
    cfg, pt = open_clip_checkpoint(tmp_path_factory.mktemp("base"))
    return f"open_clip:{cfg}:{pt}", pt


@pytest.fixture
def labeled(tiny_manifest):
    from edgekd.data.splits import make_split

    return make_split(tiny_manifest, labeled_per_class=2).apply(tiny_manifest)[0]


def test_linear_head_gives_logits_and_reloads(base_spec, tiny_manifest, labeled, tmp_path):
    spec = default_data_spec(tiny_manifest)
    teacher = load_teacher(base_spec[0], spec)
    with pytest.raises(TeacherError, match="no classifier head"):
        teacher.logits(torch.zeros(spec.input_shape(1)))
    folder = finetune_teacher(teacher, labeled, spec, tmp_path / "ft", test=tiny_manifest.split("test"),
                              epochs=30, **FAST)
    x = torch.randn(2, *spec.input_shape()[1:])
    logits = teacher.logits(x)
    assert logits.shape == (2, 4) and teacher.num_classes == 4
    meta = json.loads((folder / "teacher.json").read_text())
    assert meta["type"] == "finetuned" and meta["config"]["mode"] == "linear"
    assert 0 <= meta["metrics"]["test"]["top1"] <= 1 and meta["metrics"]["labeled_videos"] == len(labeled)
    again = load_teacher(folder, spec)
    torch.testing.assert_close(again.logits(x), logits)
    assert again.fingerprint == teacher.fingerprint


def test_linear_head_starts_as_the_zero_shot_classifier(base_spec, tiny_manifest):
    spec = default_data_spec(tiny_manifest)
    teacher = load_teacher(base_spec[0], spec)
    head = init_head(teacher, spec.class_names, FinetuneConfig())
    x = torch.randn(2, *spec.input_shape()[1:])
    zs = teacher.zeroshot_logits(x, teacher.class_text_embeddings(spec.class_names))
    torch.testing.assert_close(head(teacher.embed(x)), zs, atol=1e-4, rtol=1e-4)


def test_head_is_refused_when_the_base_weights_changed(tiny_manifest, labeled, tmp_path):
    cfg, pt = open_clip_checkpoint(tmp_path / "base", seed=1)
    spec = default_data_spec(tiny_manifest)
    folder = finetune_teacher(load_teacher(f"open_clip:{cfg}:{pt}", spec), labeled, spec, tmp_path / "ft",
                              epochs=2, **FAST)
    open_clip_checkpoint(tmp_path / "base", seed=2)                            # same files, new weights
    with pytest.raises(TeacherError, match="changed since the head") as e:
        load_teacher(folder, spec)
    assert "finetune" in e.value.hint


def test_full_finetune_trains_the_encoder_too(base_spec, tiny_manifest, labeled, tmp_path):
    spec = default_data_spec(tiny_manifest)
    teacher = load_teacher(base_spec[0], spec)
    before = teacher.model.visual.conv1.weight.clone()
    folder = finetune_teacher(teacher, labeled, spec, tmp_path / "full", mode="full", epochs=1, lr=1e-3,
                              batch_size=4, **FAST)
    assert not torch.equal(before, teacher.model.visual.conv1.weight)        # the image tower moved
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    x = torch.randn(1, *spec.input_shape()[1:])
    torch.testing.assert_close(load_teacher(folder, spec).logits(x), teacher.logits(x))


def test_bad_input(base_spec, tiny_manifest, labeled, tmp_path):
    spec = default_data_spec(tiny_manifest)
    teacher = load_teacher(base_spec[0], spec)
    unlabeled = labeled.subset(dataclasses.replace(e, label=None) for e in labeled.entries)
    with pytest.raises(DataError, match="no labeled videos"):
        finetune_teacher(teacher, unlabeled, spec, tmp_path / "a", **FAST)
    from edgekd.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown fine-tuning mode"):
        finetune_teacher(teacher, labeled, spec, tmp_path / "b", mode="half", **FAST)


def test_a_moved_teacher_tree_still_loads(tiny_manifest, labeled, tmp_path):
    from edgekd.teachers.ssl_teacher import build_ssl_teacher

    spec = default_data_spec(tiny_manifest)
    build_ssl_teacher("invariant", spec, backbone_kwargs={"width": 0.25}).save(tmp_path / "a" / "base")
    folder = finetune_teacher(load_teacher(tmp_path / "a" / "base", spec), labeled, spec, tmp_path / "a" / "ft",
                              epochs=2, **FAST)
    x = torch.randn(1, *spec.input_shape()[1:])
    before = load_teacher(folder, spec).logits(x)
    (tmp_path / "a").rename(tmp_path / "b")                 # the absolute base path is gone now
    torch.testing.assert_close(load_teacher(tmp_path / "b" / "ft", spec).logits(x), before)


def test_no_labeled_video_decodes_is_a_data_error_not_an_untrained_head(base_spec, tiny_manifest, labeled, tmp_path):
    spec = default_data_spec(tiny_manifest)
    (tmp_path / "a.mp4").write_text("404 Not Found\n")
    cut = labeled.entries[0].path.read_bytes()
    (tmp_path / "b.mp4").write_bytes(cut[: len(cut) // 3])
    broken = labeled.subset(dataclasses.replace(e, path=tmp_path / n, video_id=n)
                            for e, n in zip(labeled.entries, ("a.mp4", "b.mp4")))
    for mode in ("full", "linear"):  # full used to save a head trained 0 steps; linear failed inside torch.cat
        with pytest.raises(DataError, match="took no optimizer step: 0 of its 2 videos decode") as e:
            finetune_teacher(load_teacher(base_spec[0], spec), broken, spec, tmp_path / mode, mode=mode, epochs=1,
                             **FAST)
        assert "edgekd data check" in e.value.hint and not (tmp_path / mode).exists()
    steps = json.loads((finetune_teacher(load_teacher(base_spec[0], spec), labeled, spec, tmp_path / "ok", epochs=3,
                                         **FAST) / "teacher.json").read_text())["metrics"]["steps"]
    assert steps == 3  # 8 clips fit one batch: one step per epoch
