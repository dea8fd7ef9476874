"""TimeBalance teachers: Eqs. 5-7, the projection head, the global clip, and a real 1-epoch pretraining."""

import json
import math

import pytest
import torch

from edgekd.data.manifest import default_data_spec
from edgekd.data.splits import make_split
from edgekd.errors import TeacherError
from edgekd.pretrain.ssl import pretrain_ssl
from edgekd.pretrain.ssl_objectives import global_stride, make_global_clip
from edgekd.teachers.ssl_teacher import ProjectionHead, SSLTeacher, load_ssl_teacher
from edgekd.teachers.timebalance import blend, similarity_matrix, temporal_similarity


def test_eq6_identical_clips_score_one_orthogonal_zero():
    v = torch.randn(2, 1, 16)
    same = v.expand(2, 4, 16)                                    # all 4 clips identical
    assert torch.allclose(temporal_similarity(same, same * 2.0), torch.ones(2), atol=1e-6)
    ortho = torch.eye(4).unsqueeze(0)                            # 4 orthogonal clips, B = 1
    assert torch.allclose(temporal_similarity(ortho, ortho), torch.zeros(1), atol=1e-6)


def test_eq6_by_hand_mixes_both_teachers():
    # invariant teacher: clips 1 and 2 identical, clip 3 orthogonal to both -> off-diagonal cosines
    # (1,2)=(2,1)=1, the other four 0: sum 2. distinctive teacher: all three identical: sum 6.
    z_i = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    z_d = torch.tensor([[[0.0, 3.0, 0.0]] * 3])                  # widths may differ between teachers
    n = 3
    assert temporal_similarity(z_i, z_d).item() == pytest.approx((2 + 6) / (2 * n * (n - 1)))
    c = similarity_matrix(z_i)[0]                                 # Eq. 5
    assert torch.allclose(c, torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 1]]))


def test_eq7_blend():
    p_i = torch.tensor([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [0.7, 0.2, 0.1]])
    p_d = torch.tensor([[0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    s = torch.tensor([1.0, 0.0, 0.25])
    out = blend(p_i, p_d, s)
    assert torch.allclose(out[0], p_i[0]) and torch.allclose(out[1], p_d[1])
    assert torch.allclose(out[2], torch.tensor([0.25 * 0.7 + 0.75 * 0.1, 0.25 * 0.2 + 0.75 * 0.1,
                                                0.25 * 0.1 + 0.75 * 0.8]))
    assert torch.allclose(out.sum(-1), torch.ones(3))            # still a distribution
    per_clip = blend(p_i.unsqueeze(1).expand(3, 2, 3), p_d.unsqueeze(1).expand(3, 2, 3), s)
    assert torch.allclose(per_clip[:, 1], out)                   # (B, n, C) targets share the video's s


def test_projection_head_follows_supplement_b12():
    head = ProjectionHead(2048)                                  # the paper's R3D-50 widths
    layers = list(head.net)
    assert [type(m).__name__ for m in layers] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    assert (layers[0].in_features, layers[0].out_features, layers[3].out_features) == (2048, 512, 128)
    assert layers[0].bias is not None and layers[3].bias is None
    small = ProjectionHead(64)                                   # scaled down for a tiny backbone
    assert small(torch.randn(6, 4, 64)).shape == (6, 4, 64)


def test_global_clip_slices_align_with_local_clips():
    B, n, T = 2, 4, 8
    clips = torch.arange(n, dtype=torch.float32).view(1, n, 1, 1, 1, 1).expand(B, n, 3, T, 4, 4)
    long = make_global_clip(clips, stride=2)                     # (B, 3, n*T/2, H, W)
    assert long.shape == (B, 3, n * T // 2, 4, 4)
    # the t-th quarter of the long clip comes from clip t only
    quarters = long[0, 0, :, 0, 0].reshape(n, -1)
    assert torch.equal(quarters, torch.arange(n, dtype=torch.float32)[:, None].expand_as(quarters))


def test_global_stride_keeps_one_feature_step_per_clip():
    from edgekd.students import build_student

    net = build_student("tiny3d", num_classes=2, frames=8, size=32, width=0.25)
    stride = global_stride(net, n=4, frames=8, size=32)           # tiny3d: T' = T / 4
    t = math.ceil(4 * 8 / stride)
    assert net.forward_temporal(torch.zeros(1, 3, t, 32, 32)).shape[1] >= 4
    assert stride == 2


@pytest.mark.parametrize("objective,data", [("invariant", "memory"), ("distinctive", "stream")])
def test_pretrain_one_epoch_saves_a_loadable_teacher(tiny_manifest, tmp_path, objective, data):
    from edgekd.teachers.loading import load_teacher

    spec = default_data_spec(tiny_manifest)
    split = make_split(tiny_manifest, labeled_per_class=1)
    out = pretrain_ssl(objective, tiny_manifest, split, spec, tmp_path / objective, epochs=1, batch_size=8,
                       backbone_kwargs={"width": 0.25}, data=data, num_workers=0, progress=False)
    meta = json.loads((out / "teacher.json").read_text())
    assert meta["config"]["objective"] == objective
    assert meta["metrics"]["unlabeled_videos"] == len(split.unlabeled)   # unlabeled training videos only
    assert all(math.isfinite(v) for v in meta["metrics"]["loss_per_epoch"])

    teacher = load_teacher(out, spec)                             # the generic loader users call
    assert isinstance(teacher, SSLTeacher) and teacher.num_classes is None
    x = torch.randn(3, 3, spec.frames, spec.size, spec.size)
    again = load_ssl_teacher(out, spec)
    assert torch.equal(teacher.embed(x), again.embed(x)) and teacher.fingerprint == again.fingerprint
    assert teacher.embed(x).shape == (3, teacher.embed_dim)
    assert teacher.embed_temporal(x).shape[::2] == (3, teacher.embed_dim)
    assert not any(p.requires_grad for p in teacher.parameters())  # frozen
    with pytest.raises(TeacherError, match="no classifier head"):
        teacher.logits(x)
    with pytest.raises(TeacherError, match="already exists"):    # nothing overwritten without --force
        pretrain_ssl(objective, tiny_manifest, split, spec, out, epochs=1, num_workers=0, progress=False)


def test_pretrain_refuses_a_split_without_unlabeled_videos(tiny_manifest, tmp_path):
    spec = default_data_spec(tiny_manifest)
    everything = make_split(tiny_manifest, labeled_fraction=1.0)
    with pytest.raises(TeacherError, match="unlabeled"):
        pretrain_ssl("invariant", tiny_manifest, everything, spec, tmp_path / "t", epochs=1, progress=False)


def test_temporal_gradient_input_ignores_static_appearance():
    from edgekd.data.spec import DataSpec
    from edgekd.teachers.ssl_teacher import build_ssl_teacher

    spec = DataSpec(frames=8, size=32, class_names=("a", "b"))
    teacher = build_ssl_teacher("invariant", spec, "tiny3d", {"width": 0.25}, frames_in="diff").freeze()
    still_a = torch.randn(1, 3, 1, 32, 32).expand(1, 3, 8, 32, 32)   # two different pictures, no motion
    still_b = torch.randn(1, 3, 1, 32, 32).expand(1, 3, 8, 32, 32)
    assert torch.allclose(teacher.embed(still_a), teacher.embed(still_b))
    moving = torch.randn(1, 3, 8, 32, 32)
    assert not torch.allclose(teacher.embed(moving), teacher.embed(still_a))
    rgb = build_ssl_teacher("invariant", spec, "tiny3d", {"width": 0.25}).freeze()
    assert not torch.allclose(rgb.embed(still_a), rgb.embed(still_b))
