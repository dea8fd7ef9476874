"""Checkpoint teachers: an edgekd student checkpoint or a torchvision video model as a frozen teacher."""

import pytest
import torch

from edgekd.checkpoint import save_checkpoint
from edgekd.data.spec import DataSpec
from edgekd.errors import TeacherError
from edgekd.teachers.checkpoint_teacher import adapt_input, load_checkpoint_teacher

CLASSES = ("a", "b", "c")


@pytest.fixture
def student_run(tmp_path):
    from edgekd.students import build_student

    torch.manual_seed(0)
    spec = DataSpec(frames=8, size=32, class_names=CLASSES)
    model = build_student("tiny3d", num_classes=3, frames=8, size=32, width=0.25)
    run = tmp_path / "runs" / "r3"
    save_checkpoint(run / "checkpoint.pt", student_name="tiny3d", student_kwargs=model.config,
                    state_dict=model.state_dict(), data_spec=spec, config={}, metrics={})
    return run, model.eval(), spec


def test_student_checkpoint_serves_as_teacher(student_run):
    run, model, spec = student_run
    teacher = load_checkpoint_teacher(run, spec)
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.allclose(teacher.logits(x), model(x), atol=1e-6)
        assert torch.allclose(teacher.embed(x), model.forward_features(x), atol=1e-6)
        assert torch.allclose(teacher.embed_temporal(x), model.forward_temporal(x), atol=1e-6)
    assert teacher.num_classes == 3 and teacher.embed_dim == model.feature_dim
    assert not any(p.requires_grad for p in teacher.parameters())
    # the fingerprint follows the weights
    again = load_checkpoint_teacher(run / "checkpoint.pt", spec)
    assert again.fingerprint == teacher.fingerprint
    with torch.no_grad():
        next(again.backbone.parameters()).add_(0.01)
    again._fingerprint = None
    assert again.fingerprint != teacher.fingerprint


def test_teacher_converts_another_runs_batch(student_run):
    """A student trained at 8x32 px with Kinetics stats teaches a run at 16x48 px with other stats."""
    run, model, spec = student_run
    run_spec = DataSpec(frames=16, size=48, class_names=CLASSES, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    teacher = load_checkpoint_teacher(run, run_spec)
    pixels = torch.rand(1, 3, 16, 48, 48)                       # the same video in [0, 1]
    x_run = (pixels - 0.5) / 0.25
    x_own = adapt_input(x_run, run_spec, spec)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1, 1)
    resized = torch.nn.functional.interpolate(pixels, size=(8, 32, 32), mode="trilinear", align_corners=False)
    assert torch.allclose(x_own, (resized - mean) / std, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(teacher.logits(x_run), model(x_own), atol=1e-5)


def test_torchvision_model_with_local_weights(tmp_path):
    from edgekd.compat.torchvision import import_torchvision

    tv = import_torchvision()
    torch.manual_seed(0)
    model = tv.models.video.r3d_18(weights=None, num_classes=5).eval()
    weights = tmp_path / "r3d_18.pth"
    torch.save(model.state_dict(), weights)
    run_spec = DataSpec(frames=8, size=32, class_names=tuple("vwxyz"))
    teacher = load_checkpoint_teacher(f"torchvision:r3d_18:{weights}", run_spec)
    assert (teacher.spec.size, teacher.num_classes, teacher.embed_dim) == (112, 5, 512)
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.allclose(teacher.logits(x), model(adapt_input(x, run_spec, teacher.spec)), atol=1e-4)


def test_bad_teacher_weights_are_clear_errors(tmp_path):
    with pytest.raises(TeacherError, match="no weights file") as e:
        load_checkpoint_teacher(f"torchvision:r3d_18:{tmp_path / 'absent.pth'}")
    assert "downloaded" in e.value.hint
    wrong = tmp_path / "other.pth"                               # a classifier alone: not an r3d_18
    torch.save({"fc.weight": torch.randn(4, 512), "fc.bias": torch.zeros(4)}, wrong)
    with pytest.raises(TeacherError, match="does not fit torchvision r3d_18"):
        load_checkpoint_teacher(f"torchvision:r3d_18:{wrong}")
    headless = tmp_path / "headless.pth"
    torch.save({"stem.0.weight": torch.randn(2, 3, 3, 7, 7)}, headless)
    with pytest.raises(TeacherError, match="no classifier weights"):
        load_checkpoint_teacher(f"torchvision:r3d_18:{headless}")
    with pytest.raises(TeacherError, match="unknown torchvision video model"):
        load_checkpoint_teacher(f"torchvision:r3d18:{wrong}")
    with pytest.raises(TeacherError, match="incomplete"):
        load_checkpoint_teacher("torchvision:r3d_18")
    with pytest.raises(TeacherError, match="no checkpoint"):
        load_checkpoint_teacher(tmp_path / "no-run")
