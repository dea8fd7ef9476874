"""Real test videos: write frames with PyAV, and an easy-to-check moving-square clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_video(path: str | Path, frames: np.ndarray, fps: int = 16, codec: str | None = None) -> Path:
    """Test videos: high quality so decoded frames stay close to what was written."""
    from edgekd.data.encode import write_video as encode

    codec = codec or ("mpeg4" if Path(path).suffix.lower() == ".avi" else "libx264")
    if codec == "libx264":
        return encode(path, frames, fps, codec, {"crf": "12", "preset": "fast"})
    return encode(path, frames, fps, codec, bit_rate=4_000_000)


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
