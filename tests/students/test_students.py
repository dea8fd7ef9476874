"""Every registered student: shapes, gradients, checkpoint round trip, ONNX export parity."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint, save_checkpoint
from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError
from edgekd.students import STUDENT_NAMES, STUDENTS, Student, build_student

NUM_CLASSES = 5
# (frames, size) small enough for 2 CPU cores
SMALL = {"tiny3d": (8, 64)}
DEFAULT_SMALL = (4, 32)
# x3d_s is x3d_xs's network and r2plus1d_18 the slowest here: test them through their scaling options
SMALL_KWARGS: dict[str, dict] = {"x3d_s": {"width": 0.5, "depth": 0.5}, "r2plus1d_18": {"depth": 1}}


def small(name: str) -> tuple[Student, torch.Tensor]:
    torch.manual_seed(0)
    frames, size = SMALL.get(name, DEFAULT_SMALL)
    model = build_student(name, NUM_CLASSES, frames, size, **SMALL_KWARGS.get(name, {}))
    return model, torch.randn(2, 3, frames, size, size)


def calibrated(model: Student, x: torch.Tensor) -> Student:
    """Eval-mode model whose BatchNorm statistics come from real activations.

    Freshly initialised running statistics (mean 0, var 1) make some families (MobileNetV3 most of
    all) output nearly the same logits for every input in eval mode, which would let any parity
    check pass. One train-mode pass with cumulative averages gives statistics like a trained net's.
    """
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.randn(4, *x.shape[1:]))
    return model.eval()


@pytest.fixture(autouse=True)
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_light_name_list_matches_registry_and_needs_no_torch():
    assert tuple(STUDENTS.names()) == STUDENT_NAMES
    code = "import sys, edgekd.students as s; print(len(s.STUDENT_NAMES), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(STUDENT_NAMES)), "False"]


@pytest.mark.parametrize("name", STUDENTS.names())
def test_shapes(name):
    model, x = small(name)
    model = calibrated(model, x)
    with torch.no_grad():
        t = model.forward_temporal(x)
        f = model.forward_features(x)
        logits = model.forward_head(f)
    assert t.ndim == 3 and t.shape[0] == 2 and t.shape[2] == model.feature_dim
    assert 1 <= t.shape[1] <= x.shape[2]
    assert f.shape == (2, model.feature_dim)
    torch.testing.assert_close(f, t.mean(dim=1))
    assert logits.shape == (2, NUM_CLASSES) and model.num_classes == NUM_CLASSES
    torch.testing.assert_close(model(x), logits)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", STUDENTS.names())
def test_gradients_reach_every_parameter(name):
    model, x = small(name)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing[:5]}"


@pytest.mark.parametrize("name", STUDENTS.names())
def test_checkpoint_round_trip_rebuilds_identical_network(name, tmp_path):
    model, x = small(name)
    model = calibrated(model, x)  # non-default BatchNorm statistics must survive the trip too
    frames, size = x.shape[2], x.shape[3]
    spec = DataSpec(frames=frames, size=size, class_names=tuple("abcde"))
    path = save_checkpoint(tmp_path / "checkpoint.pt", student_name=name, student_kwargs=model.config,
                           state_dict=model.state_dict(), data_spec=spec, config={}, metrics={})
    rebuilt, spec2 = build_student_from_checkpoint(load_checkpoint(path))
    assert spec2 == spec
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", STUDENTS.names())
def test_onnx_export_matches_pytorch(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model, x = small(name)
    model = calibrated(model, x)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                      input_names=["video"], output_names=["logits"],
                      dynamic_axes={"video": {0: "batch"}, "logits": {0: "batch"}})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = torch.randn(3, *x.shape[1:])  # another batch size than the one traced
    (got,) = session.run(None, {"video": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    assert want.std(axis=0).mean() > 1e-2, "logits barely depend on the input: parity would mean nothing"
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_unknown_student_suggests_a_name():
    with pytest.raises(ConfigError) as e:
        build_student("tiny_3d", NUM_CLASSES, 8, 64)
    assert "tiny3d" in e.value.hint


def test_unknown_option_suggests_a_name():
    with pytest.raises(ConfigError) as e:
        build_student("tiny3d", NUM_CLASSES, 8, 64, widht=0.5)
    assert "width" in e.value.hint


def test_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError):
        build_student("tiny3d", 0, 8, 64)
    with pytest.raises(ConfigError):
        build_student("tiny3d", NUM_CLASSES, 8, 64, width=0.0)


def test_tiny3d_keeps_a_time_axis_and_scales_with_width():
    x = torch.randn(1, 3, 8, 64, 64)
    narrow = build_student("tiny3d", NUM_CLASSES, 8, 64, width=0.5).eval()
    wide = build_student("tiny3d", NUM_CLASSES, 8, 64, width=2.0, depth=2).eval()
    with torch.no_grad():
        assert narrow.forward_temporal(x).shape == (1, 2, 64)
        assert wide.forward_temporal(x).shape == (1, 2, 256)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(narrow) < count(build_student("tiny3d", NUM_CLASSES, 8, 64)) < count(wide)


def moving_dots(n: int, frames: int = 8, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of a bright 4x4 dot crossing the frame left->right (label 0) or right->left (label 1).

    Every single frame looks alike across the two classes; only the order of frames tells them apart.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    clips = torch.randn(n, 3, frames, size, size, generator=g) * 0.1
    for i in range(n):
        row = int(torch.randint(0, size - 4, (1,), generator=g))
        for t in range(frames):
            step = t if labels[i] == 0 else frames - 1 - t
            col = step * (size - 4) // (frames - 1)
            clips[i, :, t, row:row + 4, col:col + 4] += 2.0
    return clips, labels


def test_tiny3d_learns_direction_of_motion_in_seconds():
    torch.manual_seed(0)
    x, y = moving_dots(64)
    model = build_student("tiny3d", 2, 8, 32, width=0.5, dropout=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(25):
        i = torch.randint(0, 64, (16,))
        loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, yt = moving_dots(64, seed=1)
    with torch.no_grad():
        accuracy = (model.eval()(xt).argmax(1) == yt).float().mean().item()
    assert accuracy >= 0.9, f"tiny3d reached only {accuracy:.2f} on held-out clips"
