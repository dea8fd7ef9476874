"""The embedded vision-language teacher: trained on the captions of real synthetic mp4 videos,
saved as a teacher folder and loaded back through load_teacher."""

import dataclasses
import json

import pytest
import torch

from edgekd.data.manifest import default_data_spec
from edgekd.errors import DataError, TeacherError
from edgekd.pretrain.vl import caption_table, pretrain_vl
from edgekd.teachers.embedded_vl import EmbeddedVLTeacher
from edgekd.teachers.loading import load_teacher


@pytest.fixture(scope="module")
def vl_folder(tmp_path_factory, tiny_synth):
    from edgekd.data.manifest import Manifest

    m = Manifest.load(tiny_synth)
    out = tmp_path_factory.mktemp("vl") / "teacher"
    return pretrain_vl(m, default_data_spec(m), out, epochs=3, batch_size=4, quiet=True)


def test_pretrain_writes_a_loadable_teacher_with_measured_zero_shot(vl_folder, tiny_manifest):
    meta = json.loads((vl_folder / "teacher.json").read_text())
    assert meta["type"] == "embedded-vl" and meta["config"]["text_encoder"] == "all-MiniLM-L6-v2"
    zs = meta["metrics"]["zeroshot"]
    assert zs["videos"] == len(tiny_manifest.split("test")) and zs["chance"] == 0.25
    assert 0.0 <= zs["top1"] <= 1.0 and meta["metrics"]["train_videos"] == len(tiny_manifest.split("train"))
    assert meta["metrics"]["steps"] == 3 * (20 // 4)                        # 3 epochs of 20 videos in batches of 4

    spec = default_data_spec(tiny_manifest)
    teacher = load_teacher(vl_folder, spec)
    assert isinstance(teacher, EmbeddedVLTeacher) and teacher.embed_dim == 384
    x = torch.randn(3, *spec.input_shape()[1:])
    emb = teacher.embed(x)
    assert emb.shape == (3, 384) and torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert teacher.embed_temporal(x).shape[::2] == (3, 384)
    assert not any(p.requires_grad for p in teacher.parameters())
    assert teacher.fingerprint == load_teacher(vl_folder, spec).fingerprint   # same weights, same key


def test_training_aligns_videos_with_their_captions(vl_folder, tiny_manifest):
    from edgekd.teachers.text import minilm_encoder
    from edgekd.teachers.vl_zeroshot import predict

    spec = default_data_spec(tiny_manifest)
    train = tiny_manifest.split("train")
    captions = minilm_encoder().encode([e.caption for e in train.entries])

    def mean_cos(teacher):
        emb, _ = predict(teacher, train, spec, teacher.embed, num_workers=0, quiet=True)
        return (emb * captions).sum(-1).mean().item()

    torch.manual_seed(0)
    untrained = EmbeddedVLTeacher(dataclasses.replace(spec, size=32), input_spec=spec).freeze()
    before, after = mean_cos(untrained), mean_cos(load_teacher(vl_folder, spec))
    assert abs(before) < 0.2 and after > before + 0.3                         # a few steps already align them


def test_zero_shot_uses_the_minilm_class_prompts(vl_folder, tiny_manifest):
    spec = default_data_spec(tiny_manifest)
    teacher = load_teacher(vl_folder, spec)
    cls = teacher.class_text_embeddings(tiny_manifest.class_names, ["a video of {}."])
    x = torch.randn(2, *spec.input_shape()[1:])
    logits = teacher.zeroshot_logits(x, cls)
    expected = teacher.logit_scale * teacher.embed(x) @ teacher.encode_text(
        [f"a video of {c.replace('_', ' ')}." for c in tiny_manifest.class_names]).T
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


def test_other_run_resolutions_are_adapted_inside(vl_folder, tiny_manifest):
    spec = dataclasses.replace(default_data_spec(tiny_manifest), frames=16, size=48)
    assert load_teacher(vl_folder, spec).embed(torch.randn(1, 3, 16, 48, 48)).shape == (1, 384)


def test_corrupted_weights_are_refused(vl_folder, tmp_path, tiny_manifest):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(vl_folder, broken)
    with open(broken / "weights.pt", "ab") as f:
        f.write(b"\0")
    with pytest.raises(TeacherError, match="does not match the checksum"):
        load_teacher(broken, default_data_spec(tiny_manifest))


def test_existing_folder_is_not_overwritten(vl_folder, tiny_manifest):
    before = (vl_folder / "weights.pt").read_bytes()
    with pytest.raises(TeacherError, match="already exists"):
        pretrain_vl(tiny_manifest, default_data_spec(tiny_manifest), vl_folder, epochs=1, quiet=True)
    assert (vl_folder / "weights.pt").read_bytes() == before


def test_captions_are_required_but_labels_are_not(tiny_manifest, tmp_path):
    ids, captions = caption_table(tiny_manifest)
    assert len(captions) == len(set(captions)) and max(ids) == len(captions) - 1
    bare = tiny_manifest.subset(dataclasses.replace(e, caption=None) for e in tiny_manifest.entries)
    with pytest.raises(DataError, match="from captions needs at least 2 training videos"):
        pretrain_vl(bare, default_data_spec(tiny_manifest), tmp_path / "t", epochs=1, quiet=True)


def test_streamed_videos_that_all_fail_are_a_data_error_not_an_untrained_teacher(tiny_manifest, tmp_path):
    (tmp_path / "a.mp4").write_text("404 Not Found\n")
    cut = tiny_manifest.entries[0].path.read_bytes()
    (tmp_path / "b.mp4").write_bytes(cut[: len(cut) // 3])
    train = [e for e in tiny_manifest.entries if e.split == "train"][:2]
    broken = tiny_manifest.subset([dataclasses.replace(e, path=tmp_path / n, video_id=n)
                                   for e, n in zip(train, ("a.mp4", "b.mp4"))] + tiny_manifest.split("test").entries)
    with pytest.raises(DataError, match="vl pretraining took no optimizer step: 0 of its 2 videos decode"):
        pretrain_vl(broken, default_data_spec(tiny_manifest), tmp_path / "t", epochs=1, max_bank_mb=0, num_workers=0,
                    quiet=True)   # max_bank_mb=0: streamed, as for a dataset too large to hold
    assert not (tmp_path / "t").exists()
