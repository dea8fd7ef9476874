"""The embedded synthetic dataset: real H.264 files, deterministic, classes defined by motion."""

import numpy as np
import pytest

from edgekd.data import synthetic
from edgekd.data.decode import probe, read_frames
from edgekd.data.manifest import Manifest, default_data_spec
from edgekd.errors import ConfigError


def test_tiny_synth_manifest(tiny_manifest):
    m = tiny_manifest
    assert m.class_names == ["move_left", "move_right", "oscillate_horizontal", "move_right_then_stop"]
    assert len(m.split("train")) == 20 and len(m.split("test")) == 4
    assert all(e.caption and synthetic.CLASSES[m.class_names[e.label]][0] in e.caption for e in m.entries)
    assert m.defaults["hflip"] is False
    spec = default_data_spec(m)
    assert (spec.frames, spec.size, spec.frame_stride, spec.num_classes) == (8, 32, 1, 4)
    info = probe(m.entries[0].path)
    assert (info.codec, info.num_frames, info.width, info.height, info.fps) == ("h264", 16, 32, 32, 16.0)


def test_default_constants_make_a_clip_span_half_a_video():
    span = (synthetic.SYNTH_FRAMES - 1) * synthetic.SYNTH_STRIDE + 1
    assert 0.4 <= span / synthetic.SYNTH_VIDEO_FRAMES <= 0.6


def test_deterministic_per_seed(tmp_path):
    """In one process; across processes and thread counts: test_data_reproducible.py."""
    kw = dict(classes=["rotate_cw", "grow_then_shrink"], videos_per_class=2, frames=8, size=16, workers=1)
    a = synthetic.generate(tmp_path / "a", seed=1, **kw)
    b = synthetic.generate(tmp_path / "b", seed=1, **kw)
    c = synthetic.generate(tmp_path / "c", seed=2, **kw)
    files = sorted(p.relative_to(a.parent) for p in (a.parent / "videos").rglob("*.mp4"))
    assert len(files) == 4
    assert all((a.parent / f).read_bytes() == (b.parent / f).read_bytes() for f in files)
    assert any((a.parent / f).read_bytes() != (c.parent / f).read_bytes() for f in files)
    assert a.read_text() == b.read_text()


def _trajectory(name, seed):
    return synthetic.motion(name, 32, np.random.default_rng(seed))


@pytest.mark.parametrize("seed", range(5))
def test_each_class_is_its_motion(seed):
    tail = slice(24, None)  # after every start-time offset
    m = _trajectory("move_left", seed)
    assert (np.diff(m.x[tail]) < 0).all() and np.ptp(m.y) == 0
    m = _trajectory("move_right", seed)
    assert (np.diff(m.x[tail]) > 0).all()
    m = _trajectory("move_up", seed)
    assert (np.diff(m.y[tail]) < 0).all() and np.ptp(m.x) == 0
    m = _trajectory("move_down", seed)
    assert (np.diff(m.y[tail]) > 0).all()
    m = _trajectory("rotate_cw", seed)
    assert (np.diff(m.angle[tail]) > 0).all() and np.ptp(m.x) == np.ptp(m.r) == 0
    assert (np.diff(_trajectory("rotate_ccw", seed).angle[tail]) < 0).all()
    assert (np.diff(_trajectory("grow", seed).r[tail]) > 0).all()
    assert (np.diff(_trajectory("shrink", seed).r[tail]) < 0).all()
    m = _trajectory("move_right_then_stop", seed)
    assert m.x[19] > m.x[0] and np.ptp(m.x[20:]) == 0  # moves, then stands still
    r = _trajectory("grow_then_shrink", seed).r
    assert 10 <= int(np.argmax(r)) <= 22 and r[-1] < r.max() and r[0] < r.max()
    dx = np.diff(_trajectory("oscillate_horizontal", seed).x)
    assert (np.diff(np.sign(dx)) != 0).sum() >= 3  # several reversals: every clip looks alike
    y = _trajectory("bounce_vertical", seed).y
    assert ((y[1:-1] > y[:-2]) & (y[1:-1] > y[2:])).sum() >= 2  # touches the floor repeatedly


@pytest.mark.parametrize("name", list(synthetic.CLASSES))
def test_shapes_stay_inside_the_frame(name):
    for seed in range(10):
        m = _trajectory(name, seed)
        assert (np.abs(m.x) + m.r <= 1.0).all() and (np.abs(m.y) + m.r <= 1.0).all()


def _centroid_x(frames):
    """x centre of the moving object: pixels far from the per-pixel temporal median (the background)."""
    f = frames.astype(float).mean(axis=3)
    moving = np.abs(f - np.median(f, axis=0)) > 40
    xs = np.arange(f.shape[2])[None, None, :]
    return (moving * xs).sum(axis=(1, 2)) / np.maximum(moving.sum(axis=(1, 2)), 1)


def test_decoded_videos_show_the_motion(tiny_manifest):
    for name, sign in (("move_left", -1), ("move_right", 1)):
        label = tiny_manifest.class_names.index(name)
        for e in [e for e in tiny_manifest.entries if e.label == label][:3]:
            cx = _centroid_x(read_frames(e.path, range(16)))
            assert sign * (cx[-1] - cx[3]) > 4, f"{e.video_id}: centroid {cx.round(1)}"


def test_default_dataset_is_generated_once_and_reused(edgekd_home, monkeypatch):
    monkeypatch.setattr(synthetic, "SYNTH_CLASSES", 2)
    monkeypatch.setattr(synthetic, "SYNTH_VIDEOS_PER_CLASS", 2)
    monkeypatch.setattr(synthetic, "SYNTH_VIDEO_FRAMES", 8)
    monkeypatch.setattr(synthetic, "SYNTH_SIZE", 16)
    path = synthetic.default_dataset()
    assert path.parent.parent == edgekd_home and path.parent.name.startswith("synthetic-")
    stamp = path.stat().st_mtime_ns
    assert synthetic.default_dataset() == path and path.stat().st_mtime_ns == stamp
    assert [p.name for p in edgekd_home.iterdir()] == [path.parent.name]  # no temp folder left behind
    assert len(Manifest.load(path)) == 4


@pytest.mark.parametrize("classes", [1, 13, ["move_left"], ["move_left", "fly"]])
def test_bad_class_choices(tmp_path, classes):
    with pytest.raises(ConfigError):
        synthetic.generate(tmp_path, classes=classes, videos_per_class=2, frames=8, size=16)
