"""Camarena et al.: PCL pretext labels, the KD term, and a cross-architecture pretraining pair."""

from __future__ import annotations

import math

import pytest
import torch

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError

SPEC = DataSpec(frames=8, size=32, class_names=("a", "b", "c", "d"))


def _numbered_clips(n: int, frames: int = 8) -> torch.Tensor:
    """(n, 3, T, 4, 4) clips whose frame t is filled with 100 * clip + t: positions are readable after a transform."""
    t = torch.arange(frames, dtype=torch.float32).view(1, 1, frames, 1, 1)
    clip = 100 * torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1, 1)
    return (clip + t).expand(n, 3, frames, 4, 4).clone()


def test_pretext_labels_show_each_transformation():
    from edgekd.teachers.pcl import TRANSFORMS, transform_clips

    expected = {"original": [0, 1, 2, 3, 4, 5, 6, 7], "halves_swapped": [4, 5, 6, 7, 0, 1, 2, 3],
                "quarters_swapped": [2, 3, 0, 1, 6, 7, 4, 5], "double_speed": [0, 2, 4, 6, 1, 3, 5, 7]}
    assert set(TRANSFORMS) == set(expected)
    labels = torch.tensor([TRANSFORMS.index(name) for name in expected])  # one clip per transformation, in a batch
    shown = transform_clips(_numbered_clips(len(labels)), labels)
    for i, (name, order) in enumerate(expected.items()):
        frames = shown[i, 0, :, 0, 0]
        assert frames.tolist() == [100 * i + t for t in order], name
        assert (shown[i] == shown[i, 0, :, 0, 0].view(1, -1, 1, 1)).all()  # whole frames move, pixels stay put
        # not solvable from one frame: the clip holds the same frames under every label, only their order differs
        assert sorted(frames.tolist()) == [100 * i + t for t in range(8)]


def test_both_views_of_a_video_share_their_transformation_label():
    """The contrastive pair must not be asked to ignore the order the pretext task asks about."""
    from edgekd.teachers.pcl import build_pcl, pcl_loss

    torch.manual_seed(0)
    net = build_pcl("tiny3d", {"width": 0.25}, SPEC)
    views = _numbered_clips(6).reshape(3, 2, 3, 8, 4, 4).repeat(1, 1, 1, 1, 8, 8)  # (B=3, 2 views, 3, 8, 32, 32)
    _, shown, labels, logits = pcl_loss(net, views, torch.Generator().manual_seed(3))
    assert logits.shape == (6, 4) and labels.tolist()[0::2] == labels.tolist()[1::2]
    from edgekd.teachers.pcl import TRANSFORMS, frame_order

    for i, k in enumerate(labels.tolist()):  # clip i is shown in the order its label names
        assert shown[i, 0, :, 0, 0].tolist() == [100 * i + t for t in frame_order(TRANSFORMS[k], 8)]


def test_pretext_refuses_clips_too_short_to_tell_transformations_apart():
    from edgekd.teachers.pcl import transform_clips

    with pytest.raises(ConfigError, match=">= 4 frames"):
        transform_clips(_numbered_clips(1, frames=2), torch.tensor([1]))


def test_kd_term_is_the_hand_computed_kl():
    from edgekd.distill.losses import hinton_kd

    s = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 1.5]])
    t = torch.tensor([[0.0, 3.0, -1.0], [1.0, 1.0, 0.0]])
    T = 2.0

    def softmax(row):
        e = [math.exp(v / T) for v in row]
        return [v / sum(e) for v in e]

    kl = [sum(p * math.log(p / q) for p, q in zip(softmax(tr), softmax(sr))) for sr, tr in zip(s.tolist(), t.tolist())]
    assert hinton_kd(s, t, T).item() == pytest.approx(T * T * sum(kl) / 2, rel=1e-5)


def _nets():
    from edgekd.teachers.pcl import build_pcl

    torch.manual_seed(0)
    student = build_pcl("tiny3d", {"width": 0.25}, SPEC)
    teacher = build_pcl("r3d_18", {"width": 0.125, "depth": 1}, SPEC).eval()  # another architecture
    return student, teacher


def test_kd_gradient_reaches_the_student_only():
    from edgekd.pretrain.pcl import PretrainConfig, student_loss

    student, teacher = _nets()
    for p in teacher.parameters():
        p.requires_grad_(True)  # even a teacher left trainable must receive nothing
    views = torch.randn(3, 2, 3, 8, 32, 32)
    cfg = PretrainConfig(pretext_weight=0.0, contrast_weight=0.0, kd_weight=1.0)  # the KD term alone
    terms = student_loss(student, teacher, views, torch.Generator().manual_seed(0), cfg)
    assert terms["kd"].item() > 0 and terms["loss"].item() == pytest.approx(terms["kd"].item())
    terms["loss"].backward()
    assert all(p.grad is None for p in teacher.parameters())
    grads = [p.grad for p in student.backbone.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum().item() for g in grads) > 0
    proj = student.projection.net[0].weight.grad  # KD acts on the pretext outputs, not the projection
    assert proj is None or not proj.any()


def test_loss_weighs_each_term_as_configured():
    """L = w_p * CE + w_c * L_contrast + w_kd * KD (Fig. 2), each weight its own; w_kd = 0 drops the KD term."""
    from edgekd.pretrain.pcl import PretrainConfig, student_loss

    student, teacher = _nets()
    views = torch.randn(3, 2, 3, 8, 32, 32)
    cfg = PretrainConfig(pretext_weight=0.5, contrast_weight=2.0, kd_weight=0.25)
    t = student_loss(student, teacher, views, torch.Generator().manual_seed(0), cfg)
    assert min(t["pretext"].item(), t["contrast"].item(), t["kd"].item()) > 0
    want = 0.5 * t["pretext"].item() + 2.0 * t["contrast"].item() + 0.25 * t["kd"].item()
    assert t["loss"].item() == pytest.approx(want, rel=1e-6)
    cfg.kd_weight = 0.0
    t = student_loss(student, teacher, views, torch.Generator().manual_seed(0), cfg)
    assert "kd" not in t and t["loss"].item() == pytest.approx(0.5 * t["pretext"].item() + 2.0 * t["contrast"].item())


def test_kd_term_compares_teacher_and_student_on_the_same_clips():
    from edgekd.distill.losses import hinton_kd
    from edgekd.pretrain.pcl import PretrainConfig, student_loss
    from edgekd.teachers.pcl import random_transforms, transform_clips

    student, teacher = _nets()
    student.eval()  # BN in eval: the recomputation below sees the same outputs
    views = torch.randn(2, 2, 3, 8, 32, 32)
    cfg = PretrainConfig(temperature=3.0)
    terms = student_loss(student, teacher, views, torch.Generator().manual_seed(5), cfg)
    labels = random_transforms(2, torch.Generator().manual_seed(5)).repeat_interleave(2)  # one per video
    shown = transform_clips(views.flatten(0, 1), labels)
    with torch.no_grad():
        want = hinton_kd(student(shown)[0], teacher(shown)[0], 3.0)
    assert terms["kd"].item() == pytest.approx(want.item(), rel=1e-4)


def test_cross_architecture_pair_trains_and_initialises_a_student(tiny_synth, tmp_path, capsys):
    """tiny3d teacher (PCL, CLI) -> r3d_18 student (PCL + KD, CLI) for one epoch, then the result
    initialises an r3d_18 for `edgekd distill`, every backbone tensor, and refuses a tiny3d."""
    from edgekd.cli.main import main
    from edgekd.distill.student_init import apply_backbone_init, read_backbone_init
    from edgekd.students import build_student
    from edgekd.teachers.loading import read_teacher_meta
    from edgekd.teachers.pcl import load_pcl

    teacher = tmp_path / "teacher"
    assert main(["teacher", "pretrain", "--objective", "pcl", "--data", str(tiny_synth), "--out", str(teacher),
                 "--labeled-fraction", "0.5", "--set", "epochs=1", "--set", "width=0.25", "--set", "batch_size=4"]) == 0
    student = tmp_path / "student"
    assert main(["pretrain", "r3d_18", "--width", "0.125", "--depth", "1", "--teacher", str(teacher),
                 "--data", str(tiny_synth), "--out", str(student), "--epochs", "1", "--batch-size", "4",
                 "--labeled-fraction", "0.5", "-T", "2"]) == 0
    assert "pretrained student written to" in capsys.readouterr().out
    meta = read_teacher_meta(student)[1]
    (epoch,) = meta["metrics"]["loss_per_epoch"]
    assert all(math.isfinite(epoch[k]) and epoch[k] > 0 for k in ("pretext", "contrast", "kd"))
    assert meta["config"]["pretrain"]["teacher"] == str(teacher) and meta["config"]["pretrain"]["temperature"] == 2.0
    assert meta["metrics"]["steps"] == meta["metrics"]["unlabeled_videos"] // 4 > 0  # one epoch of full batches of 4
    net, spec, _ = load_pcl(student)

    fresh = build_student("r3d_18", num_classes=4, frames=8, size=32, width=0.125, depth=1)
    count = apply_backbone_init(fresh, read_backbone_init(student, "r3d_18", {"width": 0.125, "depth": 1}), student)
    trained = net.backbone.net.state_dict()
    assert count == len(trained) > 0
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in trained.items())
    with pytest.raises(ConfigError, match="r3d_18"):
        read_backbone_init(student, "tiny3d", {"width": 0.25})


def test_linear_probe_reads_what_the_features_carry(tiny_synth):
    """The probe scores a backbone whose features carry the label near 100 % and one whose features
    ignore the input at chance, on the real decoded test clips."""
    from torch import nn

    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.distill.probe import ClipSet, linear_probe

    manifest = Manifest.load(tiny_synth)
    spec = default_data_spec(manifest)
    test = ClipSet.decode(manifest.split("test"), spec)
    assert test.clips.shape == (len(manifest.split("test").entries), 3, spec.frames, spec.size, spec.size)
    assert sorted(set(test.labels.tolist())) == [0, 1, 2, 3]

    class Oracle(nn.Module):  # features = the label, hidden in the clip's first pixel
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward_features(self, x):
            return torch.nn.functional.one_hot(x[:, 0, 0, 0, 0].round().long(), 4).float() * self.scale

    class Blind(Oracle):
        def forward_features(self, x):
            return torch.ones(len(x), 4) * self.scale

    marked = test.clips.clone()
    marked[:, 0, 0, 0, 0] = test.labels.float()
    labeled = ClipSet(marked, test.labels)
    assert linear_probe(Oracle(), labeled, labeled) == 1.0
    assert linear_probe(Blind(), labeled, labeled) <= 0.5


def test_probe_set_with_no_decodable_video_is_a_data_error(tmp_path):
    from edgekd.data.manifest import default_data_spec, load_dataset
    from edgekd.distill.probe import ClipSet
    from edgekd.errors import DataError

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "x.mp4").write_bytes(b"not a video at all")
    manifest = load_dataset(tmp_path)
    with pytest.raises(DataError, match="no video of .* decodes"):
        ClipSet.decode(manifest, default_data_spec(manifest, frames=4, size=32))
