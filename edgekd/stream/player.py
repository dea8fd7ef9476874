"""`edgekd stream`: play a video file or a camera through a streaming artifact, one answer per frame.

    source  = video file (PyAV) or camera N (OpenCV, else PyAV's v4l2/avfoundation/dshow input)
    every `frame_stride`-th frame (the rate the student was trained at):
        resize short side to the eval decode size, centre crop, normalize  (the clip eval transform)
        StreamRunner.step(frame) -> this frame's logits; time it
        running answer = softmax(mean of the last T per-frame logits)      (a sliding clip)
    frames in between keep the last answer; `--out` draws it on every frame and encodes H.264.

The application above the floor: the runner and its state are edgekd.runtime.stream.StreamRunner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgekd.errors import BenchError, DataError


@dataclass
class Answer:
    index: int                       # frame number in the source
    topk: list[tuple[str, float]]    # (class, probability) of the running window, best first
    latency_ms: float                # this frame's model call
    window: int                      # frames in the running window (< T until T frames were seen)


def find_stream_model(target: str | Path) -> Path:
    """student.stream.onnx of a run folder, an export folder, or the file itself."""
    from edgekd.runtime.stream import STREAM_FILE

    target = Path(target)
    for cand in (target, target / STREAM_FILE, target / "export" / STREAM_FILE):
        if cand.is_file() and cand.suffix == ".onnx":
            return cand
    raise BenchError(f"no {STREAM_FILE} in {target}",
                     "export it with `edgekd export RUN --streaming` (the student needs student.shift=online)")


def _video_frames(path: Path) -> tuple[Iterator[np.ndarray], float]:
    import av

    from edgekd.errors import VideoDecodeError

    try:
        container = av.open(str(path))
        stream = container.streams.video[0]
    except Exception as e:  # noqa: BLE001 - av.error.* for foreign files, IndexError for no video stream
        raise VideoDecodeError(f"cannot decode {path}: {str(e).splitlines()[0][:200] or type(e).__name__}",
                               "is it a video file? re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)") from e
    fps = float(stream.average_rate or stream.guessed_rate or 25)

    def frames() -> Iterator[np.ndarray]:
        with container:
            for f in container.decode(stream):
                yield f.to_ndarray(format="rgb24")
    return frames(), fps


def _camera_frames(index: int) -> tuple[Iterator[np.ndarray], float]:
    """OpenCV's VideoCapture(N) where OpenCV is installed, else PyAV's platform camera input."""
    import platform

    tried = []
    try:
        import cv2  # type: ignore[import-not-found]
    except ImportError:
        tried.append("OpenCV is not installed")
    else:
        cap = cv2.VideoCapture(index)
        if cap.isOpened():
            def frames() -> Iterator[np.ndarray]:
                try:
                    while True:
                        ok, bgr = cap.read()
                        if not ok:
                            return
                        yield bgr[:, :, ::-1].copy()
                finally:
                    cap.release()
            return frames(), float(cap.get(cv2.CAP_PROP_FPS) or 30)
        tried.append(f"OpenCV could not open camera {index}")
    fmt, url = {"Linux": ("v4l2", f"/dev/video{index}"), "Darwin": ("avfoundation", str(index)),
                "Windows": ("dshow", f"video={index}")}.get(platform.system(), ("v4l2", f"/dev/video{index}"))
    try:
        import av

        container = av.open(url, format=fmt)
    except Exception as e:  # noqa: BLE001
        tried.append(f"PyAV could not open {url} ({fmt}): {str(e).splitlines()[0][:120]}")
        raise DataError(f"camera {index} cannot be opened: " + "; ".join(tried),
                        "check the camera is connected and free, install opencv-python for more backends, "
                        "or play a video file instead") from e
    stream = container.streams.video[0]

    def frames() -> Iterator[np.ndarray]:
        with container:
            for f in container.decode(stream):
                yield f.to_ndarray(format="rgb24")
    return frames(), float(stream.average_rate or 30)


def open_source(video: str | Path | None, camera: int | None) -> tuple[Iterator[np.ndarray], float, str]:
    """(RGB uint8 frames, fps, name) of a video file or a camera."""
    if camera is not None:
        frames, fps = _camera_frames(camera)
        return frames, fps, f"camera {camera}"
    path = Path(video)
    if not path.is_file():
        raise DataError(f"no video file {path}", "pass a video file, or --camera N")
    frames, fps = _video_frames(path)
    return frames, fps, str(path)


class Preprocess:
    """One RGB frame -> (1, 3, S, S) float32, as the clip eval transform treats each frame."""

    def __init__(self, spec):
        from edgekd.data.transforms import AugmentConfig

        self.spec = spec
        self.short = AugmentConfig().decode_size(spec.size)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        from PIL import Image

        from edgekd.data.decode import output_size
        from edgekd.data.transforms import center_crop, normalize, to_tchw

        h, w = output_size(rgb.shape[0], rgb.shape[1], self.short)
        small = np.array(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))  # writable: torch shares it
        x = normalize(to_tchw(center_crop(small[None], self.spec.size)), self.spec.mean, self.spec.std)
        return x[:, 0][None].numpy()                               # (1, 3, S, S)


def play(model_path: Path, frames: Iterator[np.ndarray], *, top_k: int = 3,
         max_frames: int | None = None) -> Iterator[tuple[np.ndarray, Answer | None]]:
    """Yield (RGB frame, Answer or None) for every source frame; None = the model skipped it
    (between two of the frame_stride-th frames the student was trained at)."""
    from edgekd.data.spec import DataSpec
    from edgekd.runtime.artifact import read_metadata, spec_from_metadata
    from edgekd.runtime.metrics import softmax
    from edgekd.runtime.stream import StreamRunner

    meta = read_metadata(model_path)
    if meta.get("streaming") != "1" or spec_from_metadata(meta) is None:
        raise BenchError(f"{model_path} is not an edgekd streaming model (no streaming=1 metadata)",
                         "export one with `edgekd export RUN --streaming`")
    spec = DataSpec.from_dict(spec_from_metadata(meta))
    prep, names, window = Preprocess(spec), list(spec.class_names), spec.frames
    k = max(1, min(top_k, len(names)))
    recent: list[np.ndarray] = []
    with StreamRunner(model_path, "cpu", "fp32", threads=1) as runner:
        runner.reset(1)
        for i, rgb in enumerate(frames):
            if max_frames is not None and i >= max_frames:
                return
            if i % spec.frame_stride:
                yield rgb, None
                continue
            x = prep(rgb)
            t0 = time.perf_counter()
            logits = runner.step(x)[0]
            ms = 1e3 * (time.perf_counter() - t0)
            recent = (recent + [logits])[-window:]
            p = softmax(np.mean(recent, axis=0)[None])[0]
            best = np.argsort(-p)[:k]
            yield rgb, Answer(i, [(names[j], float(p[j])) for j in best], ms, len(recent))


def label_text(a: Answer) -> str:
    return "  ".join(f"{name} {100 * p:.0f}%" for name, p in a.topk)


def draw_label(rgb: np.ndarray, text: str) -> np.ndarray:
    """The frame with `text` on a dark band along its top edge."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    band = max(12, img.height // 12)
    draw.rectangle([0, 0, img.width, band], fill=(0, 0, 0))
    draw.text((3, max(0, (band - 11) // 2)), text, fill=(255, 255, 255), font=font)
    return np.asarray(img)


class Mp4Writer:
    """H.264 (yuv420p) mp4 with PyAV; odd frame sizes are cropped by one pixel (yuv420p needs even)."""

    def __init__(self, path: str | Path, fps: float):
        import av
        from fractions import Fraction

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(self.path), "w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        self.stream.pix_fmt = "yuv420p"
        self.opened = False

    def write(self, rgb: np.ndarray) -> None:
        import av

        h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
        if not self.opened:
            self.stream.width, self.stream.height, self.opened = w, h, True
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        if not self.opened:  # no frame came: leave no empty, unplayable file behind
            try:
                self.container.close()
            except Exception:  # noqa: BLE001 - an encoder that never got a frame may refuse to flush
                pass
            self.path.unlink(missing_ok=True)
            return
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def summary(latencies_ms: list[float], frames: int) -> dict[str, Any]:
    lat = np.asarray(latencies_ms) if latencies_ms else np.zeros(1)
    return {"frames": frames, "model_frames": len(latencies_ms), "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "mean_ms": float(lat.mean())}
