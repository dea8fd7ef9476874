"""Hugging Face video models as teachers: their own input, their features and heads, model ids in the
local hub cache, and `edgekd distill` with each role from the CLI (tiny random models, no download)."""

from __future__ import annotations

import shutil

import pytest
import torch

from edgekd.data.spec import DataSpec
from edgekd.cli.main import main
from edgekd.errors import TeacherError
from edgekd.teachers import load_teacher

from hf_video_tiny import CONFIGS, MEAN, STD, hf_video_dir
from vl_tiny import hf_clip_dir, hf_xclip_dir

SPEC = DataSpec(frames=16, size=32, class_names=("a", "b", "c", "d"))


def student_clip() -> torch.Tensor:
    """(1, 3, 16, 32, 32), frame t a flat grey of level t/15, normalized with the student's stats."""
    level = torch.arange(16, dtype=torch.float32) / 15
    pixels = level.view(1, 1, 16, 1, 1).expand(1, 3, 16, 32, 32)
    return (pixels - torch.tensor(SPEC.mean).view(1, 3, 1, 1, 1)) / torch.tensor(SPEC.std).view(1, 3, 1, 1, 1)


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_the_teacher_sees_its_own_clip_of_the_same_span(family, tmp_path):
    teacher = load_teacher(hf_video_dir(tmp_path / family, family), SPEC)
    seen = []
    teacher.model.register_forward_pre_hook(lambda m, args, kwargs: seen.append((args + tuple(kwargs.values()))[0]),
                                            with_kwargs=True)
    x = student_clip()
    teacher.embed(x)
    assert x.shape == (1, 3, 16, 32, 32)                                  # the student's clip: 16 frames, 32 px
    pixels = seen[0]
    assert pixels.shape == (1, 4, 3, 24, 24)                              # the model's: 4 frames, 24 px
    levels = torch.tensor([0, 5, 10, 15]) / 15                           # 4 frames over 0..15: both ends kept
    want = (levels.view(4, 1) - torch.tensor(MEAN)) / torch.tensor(STD)  # (4, 3): its own mean/std
    torch.testing.assert_close(pixels[0].mean((-1, -2)), want, atol=1e-4, rtol=0)
    assert pixels[0].std((-1, -2)).max() < 1e-4


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_features_and_the_models_own_head(family, tmp_path):
    bare = load_teacher(hf_video_dir(tmp_path / "bare", family), SPEC)
    assert bare.embed_dim == 32 and bare.head is None
    own = load_teacher(hf_video_dir(tmp_path / "own", family, labels=["A", "b", "c", "d"]), SPEC)
    other = load_teacher(hf_video_dir(tmp_path / "k400", family, labels=["x", "y", "z"]), SPEC)
    assert own.num_classes == 4 and "own classifier" in own.head_source
    assert other.head is None and other.model_labels == ["x", "y", "z"]  # another dataset's head: not used
    x = torch.randn(3, *SPEC.input_shape(1)[1:])
    with torch.no_grad():
        want = own.model(own.teacher_input(x)).logits                     # the model's own forward
    torch.testing.assert_close(own.logits(x), want, atol=1e-5, rtol=1e-4)
    one_by_one = torch.cat([bare.embed(c) for c in x.split(1)])
    torch.testing.assert_close(bare.embed(x), one_by_one, atol=1e-5, rtol=1e-4)  # chunking changes nothing


def fake_hub(root, model_id, folder, rev="abc123"):
    snap = root / ("models--" + model_id.replace("/", "--")) / "snapshots" / rev
    shutil.copytree(folder, snap)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text(rev)
    stale = snap.parent / "old"                                            # a snapshot refs/main does not name
    shutil.copytree(folder, stale)
    (stale / "config.json").write_text("{}")


def test_model_ids_resolve_in_the_local_hub_cache(tmp_path, monkeypatch):
    model = hf_video_dir(tmp_path / "m", "videomae", labels=list(SPEC.class_names))
    fake_hub(tmp_path / "home" / "hub", "org/tiny-videomae", model)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    teacher = load_teacher("org/tiny-videomae", SPEC)
    assert teacher.num_classes == 4 and teacher.source == "org/tiny-videomae"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))       # wins over HF_HOME
    with pytest.raises(TeacherError) as e:
        load_teacher("org/tiny-videomae", SPEC)
    assert str(tmp_path / "elsewhere") in e.value.message and "huggingface-cli download org/tiny-videomae" in e.value.hint


@pytest.fixture
def distill_flags(tiny_synth, tmp_path, edgekd_home):
    sets = [f"data.path={tiny_synth}", "data.labeled=0.5", "data.workers=0", "data.augment=false",
            "student.width=0.25", "train.batch_size=4", "train.unlabeled_batch_size=4", "train.epochs=1",
            "train.device=cpu", "optim.warmup_epochs=0", f"run.dir={tmp_path / 'runs'}",
            "run.baseline=false"]
    return [a for s in sets for a in ("--set", s)]


def distill(flags, recipe, *teachers) -> int:
    return main(["distill", "--recipe", recipe, "--name", recipe, *flags, *[a for t in teachers for a in ("--teacher", t)]])


def said(capsys) -> str:
    """What the run printed (the header goes to stderr), re-flowed: rich wraps long table cells."""
    out = capsys.readouterr()
    return " ".join((out.out + out.err).split())


def test_distill_kd_with_a_kinetics_head_fits_one_once(distill_flags, tmp_path, capsys, edgekd_home):
    k400 = hf_video_dir(tmp_path / "vmae", "videomae", labels=[f"kinetics {i}" for i in range(7)])
    assert distill(distill_flags, "kd", f"kd={k400}") == 0
    out = said(capsys)
    assert "fitting a head" in out and "kd=HFVideoTeacher (head: fitted on the labeled split" in out
    assert len(list(edgekd_home.glob("teachers/*/head-*/teacher.json"))) == 1
    assert distill(distill_flags + ["--set", "run.name=again"], "kd", f"kd={k400}") == 0
    assert "fitting a head" not in said(capsys)                # reused from $EDGEKD_HOME


def test_distill_vl_roles(distill_flags, tmp_path, capsys):
    clip = hf_clip_dir(tmp_path / "clip")
    assert distill(distill_flags + ["--set", "train.epochs=2"], "feature+pseudo", f"vl={clip}") == 0  # 2 stages; zero-shot pseudo-labels
    assert "(head: zero-shot prompts (4 classes))" in said(capsys)
    timesformer = hf_video_dir(tmp_path / "tsf", "timesformer")
    assert distill(distill_flags + ["--set", "run.name=f", "--set", "train.epochs=2"], "feature", f"vl={timesformer}") == 0
    xclip = hf_xclip_dir(tmp_path / "xclip")
    assert distill(distill_flags + ["--set", "run.name=p"], "pseudo", f"vl={xclip}") == 0


def test_distill_timebalance_pair(distill_flags, tmp_path, capsys, tiny_manifest):
    invariant = hf_video_dir(tmp_path / "vmae", "videomae")               # a self-supervised encoder, no head
    distinctive = hf_video_dir(tmp_path / "vivit", "vivit", labels=list(tiny_manifest.class_names))
    vjepa = hf_video_dir(tmp_path / "vjepa", "vjepa2")
    assert distill(distill_flags, "timebalance", f"invariant={invariant}", f"distinctive={distinctive}") == 0
    out = said(capsys)
    assert "invariant=HFVideoTeacher (head: fitted" in out and "distinctive=HFVideoTeacher (head: its own" in out
    assert distill(distill_flags + ["--set", "run.name=j"], "timebalance-one", f"invariant={vjepa}") == 0
