"""The embedded synthetic action dataset: procedurally drawn shapes whose CLASS IS THE MOTION.

Any single frame shows only a shape on a background; the label is how it moves over time:
translation direction, rotation sense, growth vs shrinking, repetitive motions (temporally
invariant: every clip of the video looks alike) and compound motions made of two sub-actions in
sequence (temporally distinctive: early and late clips differ). Shape, colour, texture, speed,
start time and background are random nuisances. A small dot on every shape makes rotation visible.

Videos are real H.264 mp4 files (PyAV, libx264, yuv420p), the same bytes per seed in any process
(whatever the thread counts or `workers`; tests/data/test_data_reproducible.py), with a caption
each ("a red striped circle moves right, then stops on a dark background") and a train/test split
in manifest.json. Horizontal flip is off in the manifest defaults: it would swap left and right.

Defaults (12 classes x 30 videos, 32 frames of 64x64 at 16 fps) generate in seconds on 2 cores;
the default clip is 8 frames x 64 px every 2nd frame, spanning about half a video.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from edgekd.data.manifest import Manifest, VideoEntry, default_data_spec  # noqa: F401  (re-exported)
from edgekd.errors import ConfigError
from edgekd.home import edgekd_home
from edgekd.report import Reporter

SYNTH_VERSION = 5  # bump when the generator changes: cached datasets are regenerated (5: same bytes anywhere)
SYNTH_CLASSES = 12
SYNTH_VIDEOS_PER_CLASS = 30
SYNTH_VIDEO_FRAMES = 32   # frames per video
SYNTH_FPS = 16
SYNTH_SIZE = 64           # video width = height, and the default clip size
SYNTH_FRAMES = 8          # frames per clip (DataSpec.frames)
SYNTH_STRIDE = 2          # clip frame stride: 8 frames x 2 span about half a 32-frame video
SYNTH_TEST_FRACTION = 0.2

# Ordered so that the first N classes always mix simple, repetitive and compound motions.
# name -> (caption phrase, temporal kind)
CLASSES: dict[str, tuple[str, str]] = {
    "move_left": ("moves left", "simple"),
    "move_right": ("moves right", "simple"),
    "oscillate_horizontal": ("swings from side to side", "repetitive"),
    "move_right_then_stop": ("moves right, then stops", "compound"),
    "rotate_cw": ("rotates clockwise", "simple"),
    "rotate_ccw": ("rotates counterclockwise", "simple"),
    "grow": ("grows", "simple"),
    "shrink": ("shrinks", "simple"),
    "bounce_vertical": ("bounces up and down", "repetitive"),
    "grow_then_shrink": ("grows, then shrinks", "compound"),
    "move_up": ("moves up", "simple"),
    "move_down": ("moves down", "simple"),
}

# Difficulty: shape half-size (frame half-width = 1) and the largest background noise amplitudes.
# Sized so that the tiny3d student learns the default set from scratch in a few CPU minutes.
RADIUS = (0.22, 0.30)
NOISE = 0.06     # static background texture
FLICKER = 0.015  # per-frame sensor noise

SHAPES = ("square", "circle", "triangle")
TEXTURES = {"solid": "", "striped": "striped ", "checkered": "checkered ", "speckled": "speckled "}
COLOURS = {  # name -> RGB in [0, 1]
    "red": (0.9, 0.15, 0.1), "green": (0.15, 0.8, 0.2), "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.9, 0.1), "cyan": (0.1, 0.85, 0.9), "magenta": (0.9, 0.15, 0.85),
    "orange": (1.0, 0.55, 0.05), "white": (0.95, 0.95, 0.95), "purple": (0.55, 0.2, 0.85),
}
BACKGROUNDS = {  # name -> RGB
    "black": (0.04, 0.04, 0.05), "dark grey": (0.22, 0.22, 0.24), "navy": (0.05, 0.07, 0.25),
    "dark green": (0.05, 0.2, 0.08), "light grey": (0.72, 0.72, 0.7), "beige": (0.8, 0.74, 0.6),
    "brown": (0.35, 0.22, 0.12), "pale blue": (0.6, 0.72, 0.85),
}


def class_names(classes: int | Sequence[str] = SYNTH_CLASSES) -> list[str]:
    """The first `classes` class names, or the given names after checking them."""
    if isinstance(classes, int):
        if not 2 <= classes <= len(CLASSES):
            raise ConfigError(f"--classes must be between 2 and {len(CLASSES)}, got {classes}",
                              "the generator knows " + ", ".join(CLASSES))
        return list(CLASSES)[:classes]
    names = list(classes)
    unknown = [c for c in names if c not in CLASSES]
    if unknown or len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"invalid synthetic classes {names}", "pick 2+ distinct names from: " + ", ".join(CLASSES))
    return names


# -- motion: per-frame centre (x, y), radius and angle in normalized coordinates (frame = [-1, 1]^2) --

@dataclasses.dataclass
class Motion:
    x: np.ndarray      # (T,)
    y: np.ndarray      # (T,)
    r: np.ndarray      # (T,) half-size of the shape
    angle: np.ndarray  # (T,) radians; increasing = clockwise on screen (y points down)


def _ramp(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """0 before t0, linear to 1 at t1, 1 after."""
    return np.clip((t - t0) / max(t1 - t0, 1e-6), 0.0, 1.0)


def motion(name: str, T: int, rng: np.random.Generator) -> Motion:
    t = np.arange(T, dtype=np.float64)
    speed = rng.uniform(0.75, 1.25)
    t0 = rng.uniform(0, 0.15) * T                     # start-time nuisance
    r0 = rng.uniform(*RADIUS)
    a = _ramp(t, t0, T - 1)                            # progress over the rest of the video
    const = np.ones(T)
    cx, cy = rng.uniform(-0.3, 0.3, size=2)
    angle = rng.uniform(0, 2 * np.pi) * const
    x, y, r = cx * const, cy * const, r0 * const

    def travel(axis_sign: tuple[float, float], progress: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dist = min(speed * rng.uniform(1.0, 1.3), 2 * (0.92 - r0))
        dx, dy = axis_sign
        start = -dist / 2 + rng.uniform(-0.05, 0.05)
        along = start + dist * progress
        return (along if dx else cx * const), (along if dy else cy * const)

    if name in ("move_left", "move_right", "move_up", "move_down"):
        sign = -1.0 if name in ("move_left", "move_up") else 1.0
        axis = (1, 0) if name in ("move_left", "move_right") else (0, 1)
        x, y = travel(axis, a)
        x, y = (x * sign, y) if axis == (1, 0) else (x, y * sign)
    elif name == "move_right_then_stop":
        tm = rng.uniform(0.4, 0.6) * T
        x, y = travel((1, 0), _ramp(t, t0, tm))
    elif name in ("rotate_cw", "rotate_ccw"):
        turns = speed * rng.uniform(0.8, 1.2)           # about one turn per video
        sense = 1.0 if name == "rotate_cw" else -1.0
        angle = angle + sense * 2 * np.pi * turns * a
    elif name in ("grow", "shrink", "grow_then_shrink"):
        r_small = rng.uniform(0.1, 0.14)
        r_big = min(r_small * rng.uniform(2.0, 2.6) * speed, 0.45)
        if name == "grow":
            g = a
        elif name == "shrink":
            g = 1 - a
        else:
            tm = rng.uniform(0.4, 0.6) * T
            g = np.where(t < tm, _ramp(t, t0, tm), 1 - _ramp(t, tm, T - 1))
        r = r_small + (r_big - r_small) * g
    elif name == "oscillate_horizontal":
        period = T / (2.5 * speed)                      # 2-3 swings per video, any clip sees a reversal
        amp = rng.uniform(0.35, 0.5)
        x = amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    elif name == "bounce_vertical":
        period = T / (2.5 * speed)                      # time between two floor contacts
        height = rng.uniform(0.6, 0.9)
        floor = 0.85 - r0
        y = floor - height * np.abs(np.sin(np.pi * t / period + rng.uniform(0, np.pi)))
    else:
        raise ConfigError(f"unknown synthetic class {name!r}", "choose from: " + ", ".join(CLASSES))
    return Motion(np.asarray(x, float), np.asarray(y, float), np.asarray(r, float), np.asarray(angle, float))


# -- drawing ------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Look:
    shape: str
    colour: str
    texture: str
    background: str
    noise: float        # static background noise amplitude
    flicker: float      # per-frame (temporal) noise amplitude
    speckle: np.ndarray  # (8, 8) texture for "speckled"


def random_look(rng: np.random.Generator) -> Look:
    colour = str(rng.choice(list(COLOURS)))
    far = [b for b in BACKGROUNDS if np.abs(np.subtract(BACKGROUNDS[b], COLOURS[colour])).sum() > 0.9]
    return Look(str(rng.choice(SHAPES)), colour, str(rng.choice(list(TEXTURES))), str(rng.choice(far)),
                rng.uniform(0.0, NOISE), rng.uniform(0.0, FLICKER), rng.uniform(0.55, 1.0, size=(8, 8)))


def render(m: Motion, look: Look, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw every frame at once (vectorized over T, float32) -> uint8 (T, size, size, 3)."""
    T = len(m.x)
    f32 = np.float32
    coords = ((np.arange(size) + 0.5) / size * 2 - 1).astype(f32)
    X, Y = coords[None, None, :], coords[None, :, None]                   # (1, 1, S), (1, S, 1)
    col = lambda a: np.asarray(a, f32)[:, None, None]                      # (T,) -> (T, 1, 1)
    inv_r, cos, sin = col(1 / m.r), col(np.cos(m.angle)), col(np.sin(m.angle))
    dx, dy = X - col(m.x), Y - col(m.y)
    u = (dx * cos + dy * sin) * inv_r                                       # (T, S, S) shape-local coords
    v = (dy * cos - dx * sin) * inv_r
    px_per_unit = col(m.r * size / 2)                                       # local unit -> pixels

    if look.shape == "circle":
        dist = np.sqrt(u * u + v * v) - 1.0
    elif look.shape == "square":
        dist = np.maximum(np.abs(u), np.abs(v)) - 0.8
    else:  # triangle with circumradius 1, one vertex along +u
        dist = np.maximum(-0.5 - u, (u + f32(np.sqrt(3)) * np.abs(v) - 1.0) / 2)
    alpha = np.clip(0.5 - dist * px_per_unit, 0.0, 1.0)                    # anti-aliased edge

    if look.texture == "striped":
        shade = np.where(np.sin(u * f32(np.pi * 2.5)) > 0, f32(1.0), f32(0.6))
    elif look.texture == "checkered":
        shade = np.where((np.floor(u * 2) + np.floor(v * 2)) % 2 == 0, f32(1.0), f32(0.6))
    elif look.texture == "speckled":
        iu = np.clip(((u + 1) * 4).astype(np.int32), 0, 7)
        iv = np.clip(((v + 1) * 4).astype(np.int32), 0, 7)
        shade = look.speckle.astype(f32)[iu, iv]
    else:
        shade = np.ones_like(u)
    marker = np.clip(0.5 - (np.sqrt((u - 0.42) ** 2 + v * v) - 0.3) * px_per_unit, 0.0, 1.0)
    shade = shade * (1 - 0.85 * marker) * alpha                             # dark dot shows rotation

    noise = look.noise * rng.standard_normal((1, size, size), dtype=f32)     # static texture
    noise = noise + look.flicker * rng.standard_normal((T, size, size), dtype=f32)
    behind = 1 - alpha
    out = np.empty((T, size, size, 3), np.uint8)
    for c in range(3):  # channel by channel: numpy is slow on a trailing axis of 3
        chan = (BACKGROUNDS[look.background][c] + noise) * behind + shade * COLOURS[look.colour][c]
        out[..., c] = np.clip(chan * 255 + 0.5, 0, 255)
    return out


def encode_mp4(path: Path, frames: np.ndarray, fps: int, crf: int = 18) -> None:
    """uint8 (T, H, W, 3) -> H.264 mp4 (yuv420p); write_video makes the bytes the same in any process."""
    from edgekd.data.encode import write_video

    write_video(path, frames, fps, "libx264", {"crf": str(crf), "preset": "fast"})


def caption(name: str, look: Look) -> str:
    words = f"{look.colour} {TEXTURES[look.texture]}{look.shape}"
    article = "an" if words[0] in "aeiou" else "a"
    return f"{article} {words} {CLASSES[name][0]} on a {look.background} background"


# -- dataset ------------------------------------------------------------------------------------------

def _make_video(out: Path, name: str, ci: int, vi: int, seed: int, frames: int, size: int, fps: int,
                test: bool) -> VideoEntry:
    # One generator per video, keyed by (seed, class, video): a video never depends on the others.
    rng = np.random.default_rng([seed, list(CLASSES).index(name), vi])
    look = random_look(rng)
    clip = render(motion(name, frames, rng), look, size, rng)
    rel = f"videos/{name}/{name}_{vi:03d}.mp4"
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    encode_mp4(out / rel, clip, fps)
    return VideoEntry(out / rel, ci, "test" if test else "train", caption(name, look), f"{name}/{name}_{vi:03d}")


def _run_jobs(jobs: list[tuple], workers: int, reporter: Reporter | None) -> list[VideoEntry]:
    """Run _make_video over jobs (in `workers` processes), with a progress bar; keeps job order."""
    import contextlib
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext()
    with (reporter or Reporter.quiet()).bar("synth", len(jobs), unit="videos") as bar, pool:
        results = pool.map(_make_video, *zip(*jobs), chunksize=8) if workers > 1 else map(
            lambda job: _make_video(*job), jobs)
        entries = []
        for entry in results:
            entries.append(entry)
            bar.advance()
    return entries


def generate(out_dir: str | Path, videos_per_class: int = SYNTH_VIDEOS_PER_CLASS,
             frames: int = SYNTH_VIDEO_FRAMES, size: int = SYNTH_SIZE, seed: int = 0, *,
             classes: int | Sequence[str] = SYNTH_CLASSES, fps: int = SYNTH_FPS,
             test_fraction: float = SYNTH_TEST_FRACTION, reporter: Reporter | None = None,
             workers: int | None = None) -> Path:
    """Write the dataset into `out_dir` (videos/<class>/*.mp4 + manifest.json); return the manifest path.

    `frames` is the length of each VIDEO; the clip defaults stored in the manifest (frames, size,
    frame_stride) make a clip of min(8, frames) frames span about half of it. `workers` processes
    draw and encode in parallel (default: one per core); the output does not depend on it.
    """
    names = class_names(classes)
    if videos_per_class < 2:
        raise ConfigError(f"--videos-per-class must be >= 2, got {videos_per_class}", "each class needs train and test videos")
    if frames < 8 or size < 16:
        raise ConfigError(f"videos of {frames} frames x {size} px are too small", "use >= 8 frames and >= 16 px")
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    size += size % 2  # yuv420p needs even sizes
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    n_test = max(1, round(test_fraction * videos_per_class))
    jobs = [(out, name, ci, vi, seed, frames, size, fps, vi >= videos_per_class - n_test)
            for ci, name in enumerate(names) for vi in range(videos_per_class)]
    workers = max(1, min(workers or os.cpu_count() or 1, 8, len(jobs) // 16 or 1))
    entries = _run_jobs(jobs, workers, reporter)
    clip_frames = min(SYNTH_FRAMES, frames)
    stride = max(1, round(frames / 2 / clip_frames))  # a clip spans about half the video
    manifest = Manifest(
        root=out, class_names=names, entries=entries,
        # no flip (left/right are classes), no hue shift (captions name the colour), no upscaled decode
        defaults={"frames": clip_frames, "size": size, "frame_stride": stride, "hflip": False, "hue": 0.0,
                  "short_side_ratio": 1.0, "crop_scale": [0.6, 1.0]},
        source=str(out / "manifest.json"),
        meta={"generator": "edgekd.synthetic", "version": SYNTH_VERSION, "seed": seed, "fps": fps,
              "video_frames": frames, "video_size": size, "videos_per_class": videos_per_class,
              "class_descriptions": {n: f"a shape {CLASSES[n][0]}" for n in names},
              "temporal_kind": {n: CLASSES[n][1] for n in names}},
    )
    return manifest.save(out / "manifest.json")


def default_dataset(reporter: Reporter | None = None) -> Path:
    """The default synthetic dataset's manifest, generated once into $EDGEKD_HOME and reused.

    Generation goes to a temporary folder renamed into place, so an interrupted or concurrent run
    never leaves a half-written dataset behind.
    """
    params = {"version": SYNTH_VERSION, "classes": SYNTH_CLASSES, "videos_per_class": SYNTH_VIDEOS_PER_CLASS,
              "frames": SYNTH_VIDEO_FRAMES, "size": SYNTH_SIZE, "fps": SYNTH_FPS, "seed": 0}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    home = edgekd_home()
    final = home / f"synthetic-{key}"
    if (final / "manifest.json").is_file():
        return final / "manifest.json"
    home.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=home, prefix=f".synthetic-{key}-"))
    try:
        generate(tmp, classes=params["classes"], videos_per_class=params["videos_per_class"],
                 frames=params["frames"], size=params["size"], seed=params["seed"], fps=params["fps"],
                 reporter=reporter)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first: use theirs
            if not (final / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / "manifest.json"
