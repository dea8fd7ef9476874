"""Shared fixtures for every test area.

Helpers live in tests/videos.py (`from videos import write_video, moving_square`: pytest puts tests/
on sys.path for this conftest; several conftest.py files exist, so never import from `conftest`):
- `write_video(path, frames, fps=16, codec=None) -> Path`: write uint8 RGB frames (T, H, W, 3) as a
  real video with PyAV. codec "libx264" (H.264, yuv420p) or "mpeg4" (MPEG-4 part 2, as UCF101/HMDB51
  ship in .avi); by default chosen from the extension (.avi -> mpeg4, else libx264). H, W must be even.
- `moving_square(num_frames=24, height=48, width=64, seed=0) -> np.ndarray`: uint8 (T, H, W, 3) frames of
  a yellow square sweeping left to right over a blocky grey background: easy to check after decoding.

Fixtures:
- `tiny_synth` (session): Path of manifest.json of a tiny synthetic dataset generated once per
  session (4 classes x 6 videos, 16 frames of 32x32 px at 16 fps; 20 train / 4 test videos, captions
  included). `default_data_spec(Manifest.load(tiny_synth))` gives 8 frames x 32 px, stride 1.
- `tiny_manifest`: that dataset loaded as a `Manifest` (fresh object per test, safe to modify).
- `video_writer`: the `write_video` function.
- `edgekd_home`: points $EDGEKD_HOME at a fresh temporary folder for one test (opt in when a test
  would otherwise cache into ~/.cache/edgekd).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


from videos import moving_square, write_video  # noqa: E402,F401  (re-exported for fixtures)


@pytest.fixture
def video_writer():
    return write_video


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> Path:
    from edgekd.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("tiny_synth"), classes=4, videos_per_class=6, frames=16, size=32,
                    seed=0, workers=1)


@pytest.fixture
def tiny_manifest(tiny_synth):
    from edgekd.data.manifest import Manifest

    return Manifest.load(tiny_synth)


@pytest.fixture
def edgekd_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "edgekd_home"
    monkeypatch.setenv("EDGEKD_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def online_tsm_run(tiny_synth, tmp_path_factory) -> Path:
    """runs/online: mobilenet_v3_small_tsm (width 0.5, shift=online, 8 frames x 32 px) whose BatchNorm
    statistics are calibrated on the decoded train clips of `tiny_synth` and whose Linear layers use
    PyTorch's default init: torchvision's N(0, 0.01) Linear init and fresh BN stats make the logits
    nearly constant across inputs, which would make every parity check degenerate."""
    import torch

    from edgekd.checkpoint import save_checkpoint
    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.runtime.evalset import build_evalset
    from edgekd.students import build_student

    manifest = Manifest.load(tiny_synth)
    spec = default_data_spec(manifest)
    train = build_evalset(tiny_synth, spec, split="train", limit=12)
    torch.manual_seed(0)
    model = build_student("mobilenet_v3_small_tsm", num_classes=spec.num_classes, frames=spec.frames,
                          size=spec.size, width=0.5, shift="online")
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.reset_parameters()
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    with torch.no_grad():
        model.train()(torch.from_numpy(train.x))
    run = tmp_path_factory.mktemp("online") / "runs" / "online"
    save_checkpoint(run / "checkpoint.pt", student_name="mobilenet_v3_small_tsm", student_kwargs=model.config,
                    state_dict=model.eval().state_dict(), data_spec=spec,
                    config={"data": {"path": str(tiny_synth)}}, metrics={})
    return run


@pytest.fixture(scope="session")
def stream_export(online_tsm_run, tmp_path_factory) -> Path:
    """An export folder of `online_tsm_run` with student.onnx and student.stream.onnx (no INT8/FP16)."""
    from edgekd.export.api import export_run

    out = tmp_path_factory.mktemp("stream") / "export"
    return export_run(online_tsm_run, out, int8=False, fp16_onnx=False, streaming=True, parity_clips=4,
                      noise_inputs=2)
