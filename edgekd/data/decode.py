"""Video decoding: decord by default, PyAV as fallback and by choice; resize happens at decode.

`read_frames(path, indices, size)` returns uint8 RGB frames (T, H, W, 3) for the given frame
indices (decode order, 0-based). `size` is either an int (the short side, aspect kept) or an
exact (height, width). `backend="auto"` tries decord and falls back to PyAV when decord is not
installed or fails on the file; every failure is a `VideoDecodeError` naming the file.

Indices past the last decodable frame are clamped to it (container frame counts are often a frame
or two off); a video that ends far earlier than its header says is reported as truncated.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from edgekd.errors import VideoDecodeError

BACKENDS = ("auto", "decord", "pyav")
_SEEK_AFTER = 150  # PyAV decodes from the start below this index, seeks above it
_TRUNCATION_SLACK = 3  # frames a header may over-report before a video counts as truncated


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    width: int
    height: int
    duration: float  # seconds
    codec: str = ""


@functools.cache
def _decord():
    """The decord module, or None where it is not installed (e.g. aarch64 wheels are missing)."""
    try:
        import decord

        decord.logging.set_level(decord.logging.QUIET)  # its ffmpeg chatter duplicates our errors
        return decord
    except ImportError:
        return None


def available_backends() -> list[str]:
    return (["decord"] if _decord() is not None else []) + ["pyav"]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoDecodeError(f"{path} does not exist", "check the dataset's paths")
    if not path.is_file():
        raise VideoDecodeError(f"{path} is not a file", "point at a video file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path} is empty (0 bytes)", "re-download or re-encode this video, or remove it")


def _decode_error(path: Path, reason: object) -> VideoDecodeError:
    reason = " ".join(str(reason).replace(f": '{path}'", "").split())[:300]  # av repeats the path
    reason = re.sub(r"^\[Errno -?\d+\] ", "", reason)  # ffmpeg's error number says nothing to a user
    return VideoDecodeError(f"cannot decode {path}: {reason}",
                            "the file is truncated, corrupt or not a video; re-encode or remove it")


def failure_reason(error: VideoDecodeError, path: str | Path) -> str:
    """Why `path` failed, without repeating the path: "truncated: 3 of 40 frames decodable"."""
    return (error.message.replace(f"cannot decode {path}: ", "").replace(f"{path} is ", "")
            .replace(f"{path} ", "").replace(str(path), "the file"))


def output_size(height: int, width: int, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """(height, width) after resizing: int = short side (aspect kept), tuple = exact."""
    if size is None:
        return height, width
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    if height <= width:
        return int(size), max(1, round(width * size / height))
    return max(1, round(height * size / width)), int(size)


# -- probe --------------------------------------------------------------------------------------------

def probe(path: str | Path) -> VideoInfo:
    """Frame count, fps, resolution and duration from the container (PyAV reads only the header,
    plus the packet index when the header has no frame count)."""
    import av

    path = Path(path)
    _check_file(path)
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoDecodeError(f"{path} has no video stream", "is it an audio file with a video extension?")
            s = c.streams.video[0]
            rate = s.average_rate or s.guessed_rate or s.base_rate
            fps = float(rate) if rate else 0.0
            n = s.frames or sum(1 for p in c.demux(s) if p.size)  # some containers omit the count
            if s.duration and s.time_base:
                duration = float(s.duration * s.time_base)
            elif c.duration:
                duration = c.duration / 1e6
            else:
                duration = n / fps if fps else 0.0
            cc = s.codec_context
            if not n or not cc.width:
                raise VideoDecodeError(f"{path} has an empty video stream", "re-encode or remove it")
            return VideoInfo(int(n), fps, int(cc.width), int(cc.height), duration, cc.name)
    except VideoDecodeError:
        raise
    except Exception as e:  # av raises many error types for foreign files
        raise _decode_error(path, e) from e


@functools.lru_cache(maxsize=4096)
def _cached_probe(path: str, mtime: float) -> VideoInfo:
    return probe(path)


def probe_cached(path: str | Path) -> VideoInfo:
    """probe() memoized per process by (path, mtime): datasets probe each video once."""
    path = Path(path)
    _check_file(path)
    return _cached_probe(str(path), path.stat().st_mtime)


# -- read ---------------------------------------------------------------------------------------------

def read_frames(path: str | Path, indices: Sequence[int], size: int | tuple[int, int] | None = None,
                backend: str = "auto", threads: int = 1) -> np.ndarray:
    """Decode frames `indices` of `path` -> uint8 (T, H, W, 3), resized at decode to `size`.

    threads: decoder threads per call (1 suits DataLoader workers that already fill the cores).
    """
    if backend not in BACKENDS:
        raise VideoDecodeError(f"unknown decode backend {backend!r}", f"choose one of {', '.join(BACKENDS)}")
    path = Path(path)
    _check_file(path)
    idx = np.asarray(list(indices), dtype=np.int64)
    if idx.size == 0 or idx.min() < 0:
        raise VideoDecodeError(f"{path}: frame indices must be non-negative and non-empty", "check the sampler")
    if backend == "decord" or (backend == "auto" and _decord() is not None):
        try:
            return _read_decord(path, idx, size, threads)
        except VideoDecodeError as e:
            if backend == "decord":
                raise
            why = e.message.split(": ", 1)[-1]
        except Exception as e:  # decord raises DECORDError/RuntimeError for bad files
            if backend == "decord":
                raise _decode_error(path, e) from None
            why = _decode_error(path, e).message.split(": ", 1)[-1]
        # Only the message is kept: a kept exception would hold decord's reader alive through its
        # traceback, and a reader that outlives a fork deadlocks the child that frees it.
        try:
            return _read_pyav(path, idx, size, threads)
        except VideoDecodeError as e:
            raise VideoDecodeError(e.message if why in e.message else f"{e.message} (decord also failed: {why})",
                                   e.hint) from None
    return _read_pyav(path, idx, size, threads)


def _read_decord(path: Path, idx: np.ndarray, size, threads: int) -> np.ndarray:
    decord = _decord()
    if decord is None:
        raise VideoDecodeError("decord is not installed", "pip install decord, or use backend='pyav'")
    kw, info = {}, None
    if size is not None:
        info = probe_cached(path)
        h, w = output_size(info.height, info.width, size)
        if (h, w) != (info.height, info.width):
            kw = {"height": h, "width": w}
    vr = decord.VideoReader(str(path), num_threads=threads, **kw)
    try:
        n = len(vr)
        if n == 0:
            raise VideoDecodeError(f"{path} has no decodable frames", "re-encode or remove it")
        if info is not None and idx.max() >= n + _TRUNCATION_SLACK and info.num_frames > n + _TRUNCATION_SLACK:
            raise VideoDecodeError(f"{path} is truncated: {n} of {info.num_frames} frames decodable",
                                   "re-download or re-encode it")
        want = np.minimum(idx, n - 1)
        uniq, inverse = np.unique(want, return_inverse=True)
        frames = vr.get_batch(uniq.tolist()).asnumpy()  # (U, H, W, 3)
        return np.ascontiguousarray(frames[inverse])
    finally:
        # Free the reader and its decode thread now, in this process: an exception's traceback would
        # otherwise keep it alive, and a forked DataLoader worker that frees a copy of it hangs in
        # pthread_cond_destroy (its decode thread exists only in the parent).
        del vr


def _read_pyav(path: Path, idx: np.ndarray, size, threads: int) -> np.ndarray:
    import av

    want = sorted(set(idx.tolist()))
    # One scaler per call, single-threaded: PyAV's `frame.reformat` reuses a per-thread scaler whose
    # slice threads a forked DataLoader worker inherits without the threads, and hangs when it frees them.
    scaler = av.video.reformatter.VideoReformatter()
    rgb = functools.partial(scaler.reformat, format="rgb24", threads=1)
    got: dict[int, np.ndarray] = {}
    last_index, last_frame = -1, None
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoDecodeError(f"{path} has no video stream", "is it an audio file with a video extension?")
            s = c.streams.video[0]
            s.thread_type = "AUTO" if threads != 1 else "SLICE"
            s.codec_context.thread_count = threads
            h, w = output_size(s.codec_context.height, s.codec_context.width, size)
            rate = s.average_rate or s.guessed_rate
            seek = want[0] > _SEEK_AFTER and rate and s.time_base and s.frames
            if seek:  # jump near the first wanted frame; recover frame numbers from timestamps
                start_pts = s.start_time or 0
                target = int(want[0] / float(rate) / float(s.time_base)) + start_pts
                c.seek(target, stream=s, backward=True, any_frame=False)
            i = -1
            for frame in c.decode(s):
                if seek and frame.pts is not None:
                    i = round((frame.pts - start_pts) * float(s.time_base) * float(rate))
                else:
                    i += 1
                if i in want and i not in got:
                    got[i] = rgb(frame, width=w, height=h).to_ndarray()
                last_index, last_frame = i, frame
                if i >= want[-1]:
                    break
            header_frames = s.frames
    except VideoDecodeError:
        raise
    except Exception as e:  # av.error.* for corrupt/foreign files
        raise _decode_error(path, e) from e
    if last_frame is None:
        raise VideoDecodeError(f"{path} has no decodable frames", "re-encode or remove it")
    if len(got) < len(want):
        if header_frames and last_index + 1 + _TRUNCATION_SLACK < min(header_frames, want[-1] + 1):
            raise VideoDecodeError(f"{path} is truncated: {last_index + 1} of {header_frames} frames decodable",
                                   "re-download or re-encode it")
        tail = rgb(last_frame, width=w, height=h).to_ndarray()
        for j in want:  # past the real end: repeat the last frame (headers over-count by a frame or two)
            got.setdefault(j, got.get(max((k for k in got if k < j), default=-1), tail))
    return np.stack([got[j] for j in idx.tolist()])
