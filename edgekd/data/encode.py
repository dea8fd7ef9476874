"""Write uint8 frames as a real video file (PyAV): the synthetic set, the UCF101/HMDB51-format sets, tests.

Same frames, same bytes, in any process (tests/data/test_data_reproducible.py), because:
- one encoder thread: libx264 frame threads and mpeg4 slices default to the CPU count, and each count
  gives other bytes;
- x264 without its assembly: its SIMD macroblock-tree code reads memory nobody wrote, so the same frames
  encoded again in the same process came out different (14 of 36 64-px synthetic videos within 6 tries).
  The C code needs no CPU-specific paths and gives the same size and fidelity, for ~2x the encoding time
  (the default set: 11 s of CPU instead of 5). `mbtree=0` cures it too but doubles the files;
- bitexact muxing and encoding: no libavformat/libavcodec version strings in the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DETERMINISTIC = {"threads": "1", "flags": "+bitexact"}  # encoder options every write_video call gets
X264_PARAMS = "asm=0"


def _encoder_options(codec: str, options: dict[str, str] | None) -> dict[str, str]:
    """The caller's options with the determinism settings forced on (they win over the caller's)."""
    opts = {**(options or {}), **DETERMINISTIC}
    if codec == "libx264":
        opts["x264-params"] = ":".join(filter(None, (opts.get("x264-params"), X264_PARAMS)))
    return opts


def write_video(path: str | Path, frames: np.ndarray, fps: int = 16, codec: str | None = None,
                options: dict[str, str] | None = None, bit_rate: int | None = None) -> Path:
    """uint8 (T, H, W, 3) RGB -> `path` in yuv420p (H, W even); returns the path. Deterministic (see above).

    codec: "libx264" (H.264) or "mpeg4" (MPEG-4 part 2, as UCF101 and HMDB51 ship in .avi); by default
    chosen from the extension (.avi -> mpeg4, else libx264). options: encoder options (e.g. crf).
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or ("mpeg4" if path.suffix.lower() == ".avi" else "libx264")
    frames = np.asarray(frames, dtype=np.uint8)
    with av.open(str(path), "w", container_options={"fflags": "+bitexact"}) as c:
        s = c.add_stream(codec, rate=fps, options=_encoder_options(codec, options))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if bit_rate:
            s.codec_context.bit_rate = bit_rate
        for f in frames:
            for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path
