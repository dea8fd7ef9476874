"""Where clips start in time and where crops sit in space.

A clip is `frames` frames taken every `stride` frames, so it spans (frames - 1) * stride + 1
source frames. Videos shorter than a clip repeat their last frame.

- random: n clips, one random start in each of n equal segments of the video (sorted in time,
  so n=4 clips of one video cover its beginning, middle and end as TimeBalance needs);
- uniform: n evenly spaced starts (n=1 is the centre clip) — the test protocol's K clips;
- window / center-window: n back-to-back clips filling one window of n clip spans, placed at random
  or in the middle of the video (TimeBalance's authors: 4 clips of 16 frames in a 64-frame window);
- spatial: the 3 crops of the multi-view protocol (start, centre, end of the long side).
"""

from __future__ import annotations

import numpy as np


def clip_span(frames: int, stride: int) -> int:
    return (frames - 1) * stride + 1


def random_starts(num_frames: int, frames: int, stride: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n start frames, one drawn uniformly inside each of n equal segments of the valid range."""
    last = max(0, num_frames - clip_span(frames, stride))  # latest start that fits
    edges = np.linspace(0, last + 1, n + 1)
    lo, hi = np.floor(edges[:-1]).astype(np.int64), np.maximum(np.floor(edges[1:]).astype(np.int64), 1)
    hi = np.maximum(hi, lo + 1)
    return np.minimum(rng.integers(lo, hi), last)


def uniform_starts(num_frames: int, frames: int, stride: int, n: int) -> np.ndarray:
    """n evenly spaced start frames; one clip is centred, several cover first to last."""
    last = max(0, num_frames - clip_span(frames, stride))
    if n == 1:
        return np.array([last // 2], dtype=np.int64)
    return np.round(np.linspace(0, last, n)).astype(np.int64)


def window_starts(num_frames: int, frames: int, stride: int, n: int,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """n back-to-back clip starts, frames * stride apart, so the n clips read one window at one stride
    (together one long clip). Random window with `rng`, centred without. A video shorter than the
    window starts it at frame 0 (clip_indices clamps to the last frame)."""
    step = frames * stride
    last = max(0, num_frames - ((n - 1) * step + clip_span(frames, stride)))  # latest window start that fits
    first = int(rng.integers(0, last + 1)) if rng is not None else last // 2
    return first + step * np.arange(n, dtype=np.int64)


def clip_indices(starts: np.ndarray, frames: int, stride: int, num_frames: int) -> np.ndarray:
    """(n,) starts -> (n, frames) frame indices, clamped to the last frame."""
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(frames, dtype=np.int64)[None] * stride
    return np.minimum(idx, num_frames - 1)


def three_crops(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """(top, left) of 3 size x size crops along the long side: start, centre, end."""
    if width >= height:
        top = (height - size) // 2
        return [(top, 0), (top, (width - size) // 2), (top, width - size)]
    left = (width - size) // 2
    return [(0, left), ((height - size) // 2, left), (height - size, left)]
