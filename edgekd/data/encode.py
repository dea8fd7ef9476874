"""Write uint8 frames as a real video file (PyAV): the synthetic set, the UCF101/HMDB51-format sets, tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_video(path: str | Path, frames: np.ndarray, fps: int = 16, codec: str | None = None,
                options: dict[str, str] | None = None, bit_rate: int | None = None) -> Path:
    """uint8 (T, H, W, 3) RGB -> `path` in yuv420p (H, W even); returns the path.

    codec: "libx264" (H.264) or "mpeg4" (MPEG-4 part 2, as UCF101 and HMDB51 ship in .avi); by default
    chosen from the extension (.avi -> mpeg4, else libx264). options: encoder options (e.g. crf).
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or ("mpeg4" if path.suffix.lower() == ".avi" else "libx264")
    frames = np.asarray(frames, dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps, options=options or {})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if bit_rate:
            s.codec_context.bit_rate = bit_rate
        for f in frames:
            for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path
