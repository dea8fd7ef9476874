"""What each family promises beyond the shared interface."""

from __future__ import annotations

import collections

import pytest
import torch

from edgekd.compat.torchvision import import_torchvision
from edgekd.errors import ConfigError
from edgekd.students import build_student
from edgekd.students.mobilenet_tsm import temporal_shift


def test_temporal_shift_moves_one_eighth_each_way_with_zero_ends():
    b, t, c = 2, 4, 16
    x = torch.arange(b * t * c * 3 * 3, dtype=torch.float32).reshape(b * t, c, 3, 3) + 1
    y = temporal_shift(x, frames=t, fold=c // 8).reshape(b, t, c, 3, 3)
    x = x.reshape(b, t, c, 3, 3)
    torch.testing.assert_close(y[:, :-1, :2], x[:, 1:, :2])      # frame t sees t+1
    torch.testing.assert_close(y[:, 1:, 2:4], x[:, :-1, 2:4])    # frame t sees t-1
    assert (y[:, -1, :2] == 0).all() and (y[:, 0, 2:4] == 0).all()
    torch.testing.assert_close(y[:, :, 4:], x[:, :, 4:])          # the other 3/4 stay put


def test_tsm_student_mixes_neighbouring_frames():
    model = build_student("mobilenet_v3_small_tsm", 5, 4, 32).eval()
    x = torch.randn(1, 3, 4, 32, 32, requires_grad=True)
    model.forward_temporal(x)[:, 0].sum().backward()            # features of frame 0 only
    per_frame = x.grad.abs().sum(dim=(0, 1, 3, 4))
    assert per_frame[0] > 0 and per_frame[1] > 0, "frame 0's features ignore frame 1: no shift"


def test_tsm_student_rejects_another_clip_length():
    model = build_student("mobilenet_v3_small_tsm", 5, 4, 32)
    with pytest.raises(ConfigError):
        model(torch.randn(1, 3, 6, 32, 32))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tsm_onnx_graph_has_only_2d_edge_friendly_ops(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = build_student("mobilenet_v3_large_tsm", 5, 4, 32).eval()
    path = tmp_path / "tsm.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 4, 32, 32),), str(path), dynamo=False, opset_version=17)
    graph = onnx.load(str(path)).graph
    ops = collections.Counter(n.op_type for n in graph.node)
    allowed = {"Conv", "Relu", "HardSwish", "HardSigmoid", "Mul", "Add", "GlobalAveragePool",
               "ReduceMean", "Gemm", "Slice", "Concat", "Reshape", "Transpose", "Constant", "Identity"}
    assert set(ops) <= allowed, f"unexpected ops {set(ops) - allowed}"
    assert all(len(i.dims) <= 4 for i in graph.initializer), "a 3D convolution slipped in"


def test_x3d_matches_the_paper_size_and_keeps_time():
    model = build_student("x3d_xs", 400, 4, 160)              # the paper counts a 400-class head
    params = sum(p.numel() for p in model.parameters())
    assert 3.7e6 < params < 3.9e6                               # X3D paper Table 3: 3.8M
    with torch.no_grad():
        assert model.eval().forward_temporal(torch.randn(1, 3, 5, 32, 32)).shape == (1, 5, 2048)
    narrow = build_student("x3d_s", 5, 4, 32, width=0.5, depth=0.5)
    assert sum(p.numel() for p in narrow.parameters()) < params / 2


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_video_resnets_take_torchvision_weights(name):
    tv = import_torchvision()
    reference = getattr(tv.models.video, name)(weights=None).state_dict()
    reference = {k: v for k, v in reference.items() if not k.startswith("fc.")}
    model = build_student(name, 5, 4, 32)
    missing, unexpected = model.load_state_dict(reference, strict=False)
    assert not unexpected and set(missing) == {"head.weight", "head.bias"}


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_narrow_video_resnets_keep_torchvisions_layout(name):
    """width < 1 scales every stage's channels but keeps torchvision's parameter names."""
    full = build_student(name, 5, 4, 32, depth=1).state_dict()
    narrow = build_student(name, 5, 4, 32, depth=1, width=0.125)
    assert list(narrow.state_dict()) == list(full)
    assert narrow.feature_dim == narrow.head.in_features == 64
    assert sum(p.numel() for p in narrow.parameters()) < sum(v.numel() for v in full.values()) / 30
    x = torch.randn(2, 3, 8, 32, 32)
    steps = narrow.eval().forward_temporal(x)
    assert steps.shape[0] == 2 and steps.shape[-1] == 64  # (B, T', 64); mc3 keeps T
    assert not torch.allclose(narrow(x)[0], narrow(x)[1])  # outputs vary with the input
