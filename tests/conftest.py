"""Shared fixtures for every test area.

Helpers (plain functions: `from conftest import write_video, moving_square`, since pytest puts tests/
on sys.path for this conftest; or take the `video_writer` fixture):
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


def write_video(path: str | Path, frames: np.ndarray, fps: int = 16, codec: str | None = None) -> Path:
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or ("mpeg4" if path.suffix.lower() == ".avi" else "libx264")
    frames = np.asarray(frames, dtype=np.uint8)
    options = {"crf": "12", "preset": "fast"} if codec == "libx264" else {}
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps, options=options)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "mpeg4":
            s.codec_context.bit_rate = 4_000_000  # high quality so decoded frames stay close
        for f in frames:
            for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def moving_square(num_frames: int = 24, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # grey 4x4-pixel blocks: textured, yet nothing that yuv420p chroma subsampling would smear
    blocks = rng.integers(20, 90, size=(-(-height // 4), -(-width // 4), 1), dtype=np.uint8)
    bg = np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)[:height, :width].repeat(3, axis=2)
    frames = np.repeat(bg[None], num_frames, axis=0)
    side = max(4, height // 4)
    for t in range(num_frames):
        x = round(t * (width - side) / max(1, num_frames - 1))
        frames[t, height // 2 - side // 2: height // 2 + side // 2, x:x + side] = (230, 200, 40)
    return frames


@pytest.fixture
def video_writer():
    return write_video


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> Path:
    from edgekd.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("tiny_synth"), classes=4, videos_per_class=6, frames=16, size=32,
                    seed=0, progress=False, workers=1)


@pytest.fixture
def tiny_manifest(tiny_synth):
    from edgekd.data.manifest import Manifest

    return Manifest.load(tiny_synth)


@pytest.fixture
def edgekd_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "edgekd_home"
    monkeypatch.setenv("EDGEKD_HOME", str(home))
    return home
