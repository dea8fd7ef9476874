"""Forked loader workers: no deadlock whatever the parent decoded, a stalled worker becomes an error
naming its video, and workers die with the main process.

The deadlocks reproduced here (PyAV 18 / FFmpeg 8 and decord 0.6, both seen in full test runs and in
a user's training): a decoder object with its own threads, alive in the parent at fork time, is freed
or reused in the child, whose copy of it has no threads, and pthread_cond_destroy waits forever.
- PyAV: `frame.reformat` keeps one scaler per thread with slice threads; a worker reusing it hangs.
- decord: a reader kept alive by a failed read's traceback (a reference cycle) is garbage-collected
  in the worker and hangs in its destructor.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from videos import moving_square, write_video

from edgekd.data.dataset import ClipDataset, _WorkerInit, make_loader
from edgekd.data.decode import available_backends, read_frames
from edgekd.data.manifest import default_data_spec, load_dataset
from edgekd.errors import LoaderStalled, VideoDecodeError


def _folder_dataset(root: Path) -> Path:
    """2 classes x 3 MPEG-4 AVIs (64x64, 40 frames) plus a truncated AVI in class a."""
    for k, cls in enumerate(("a", "b")):
        for j in range(3):
            write_video(root / cls / f"{cls}{j}.avi", moving_square(40, 64, 64, seed=3 * k + j))
    good = root / "a" / "a0.avi"
    (root / "a" / "truncated.avi").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    return root


def _parent_decodes(root: Path, backend: str) -> None:
    """Decode a good and a truncated file here, as earlier tests or an earlier stage would."""
    read_frames(root / "a" / "a1.avi", range(8), size=32, backend=backend)
    try:  # "auto" tries decord first and falls back to PyAV: the path where a reader was kept alive
        read_frames(root / "a" / "truncated.avi", range(30, 38), size=32,
                    backend="auto" if backend == "decord" else backend)
    except VideoDecodeError:
        pass


@pytest.mark.parametrize("backend", available_backends())
def test_two_worker_loader_finishes_after_the_parent_decoded(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKD_LOADER_TIMEOUT_S", "30")  # a regression fails in 30 s instead of hanging
    root = _folder_dataset(tmp_path / "videos")
    manifest = load_dataset(root)
    dataset = ClipDataset(manifest, default_data_spec(manifest, frames=8, size=32), mode="train", backend=backend)
    init = _WorkerInit.__call__

    def collect_first(self, worker_id):  # the worker's garbage collector runs before it decodes
        gc.enable()
        gc.collect()
        init(self, worker_id)

    monkeypatch.setattr(_WorkerInit, "__call__", collect_first)
    gc.disable()  # keep any reference cycle alive until the fork, as a busy parent would
    try:
        _parent_decodes(root, backend)
        loader = make_loader(dataset, batch_size=2, shuffle=True, num_workers=2)
        seen = [int(i) for _ in range(2) for batch in loader for i in batch["index"]]
    finally:
        gc.enable()
    assert len(seen) == 2 * (len(manifest) - 1)  # every good video, twice; the truncated one skipped
    assert [p for p, _ in manifest.skipped] == [str(root / "a" / "truncated.avi")]


def _sleep_on(path_part: str):
    real = read_frames

    def read(path, *args, **kwargs):
        if path_part in str(path):
            time.sleep(3600)  # a decoder that never returns
        return real(path, *args, **kwargs)

    return read


def _capture_iterators(loader) -> list:
    """The torch iterators `loader` starts (they hold its worker processes)."""
    started, start = [], loader._get_iterator
    loader._get_iterator = lambda: started.append(start()) or started[-1]
    return started


def test_a_stalled_worker_is_an_error_naming_its_video(tmp_path, monkeypatch):
    root = _folder_dataset(tmp_path / "videos")
    (root / "a" / "truncated.avi").unlink()
    manifest = load_dataset(root)
    monkeypatch.setenv("EDGEKD_LOADER_TIMEOUT_S", "3")
    monkeypatch.setattr("edgekd.data.dataset.read_frames", _sleep_on("b1.avi"))  # the fork inherits it
    loader = make_loader(ClipDataset(manifest, default_data_spec(manifest, frames=8, size=32), mode="eval"),
                         batch_size=1, shuffle=False, num_workers=2)
    started = _capture_iterators(loader)
    start = time.monotonic()
    with pytest.raises(LoaderStalled) as e:
        for _ in loader:
            pass
    workers = started[0]._workers
    assert time.monotonic() - start < 30
    assert str(root / "b" / "b1.avi") in e.value.message and "3 s" in e.value.message
    assert "data.workers=0" in e.value.hint
    deadline = time.monotonic() + 10
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(w.is_alive() for w in workers)


_ORPHAN = textwrap.dedent("""
    import sys, threading, time
    sys.path[:0] = [{here!r}, {tests!r}]
    from edgekd.data import dataset as ds
    from edgekd.data.manifest import default_data_spec, load_dataset
    import test_loader_workers as t
    ds.read_frames = t._sleep_on(".avi")  # every worker blocks in "decoding"
    manifest = load_dataset({root!r})
    loader = ds.make_loader(ds.ClipDataset(manifest, default_data_spec(manifest, frames=8, size=32), mode="eval"),
                            batch_size=1, shuffle=False, num_workers=2)
    started = t._capture_iterators(loader)
    threading.Thread(target=lambda: next(iter(loader)), daemon=True).start()
    while not started:
        time.sleep(0.05)
    print(" ".join(str(w.pid) for w in started[0]._workers), flush=True)
    time.sleep(3600)
""")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal and /proc are Linux")
def test_workers_end_when_the_main_process_is_killed(tmp_path):
    root = _folder_dataset(tmp_path / "videos")
    here = Path(__file__).parent
    script = _ORPHAN.format(here=str(here), tests=str(here.parent), root=str(root))
    main = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in main.stdout.readline().split()]
        assert len(pids) == 2 and all(_running(p) for p in pids)
        time.sleep(1.0)  # the workers are inside the blocking "decode"
        main.send_signal(signal.SIGKILL)
        main.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_running(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = [p for p in pids if _running(p)]
    finally:
        main.kill()
    for p in alive:  # do not leave them behind if the assertion is about to fail
        os.kill(p, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived the main process"


def test_loader_timeout_setting_is_checked(monkeypatch):
    from edgekd.data.dataset import loader_timeout
    from edgekd.errors import ConfigError

    monkeypatch.setenv("EDGEKD_LOADER_TIMEOUT_S", "soon")
    with pytest.raises(ConfigError, match="EDGEKD_LOADER_TIMEOUT_S"):
        loader_timeout()
    monkeypatch.setenv("EDGEKD_LOADER_TIMEOUT_S", "12.5")
    assert loader_timeout() == 12.5


def test_pyav_decode_matches_a_fresh_process_scaler(tmp_path):
    """The per-call single-threaded scaler gives the same pixels as PyAV's own frame.to_ndarray."""
    import av

    path = write_video(tmp_path / "v.mp4", moving_square(12, 48, 64))
    ours = read_frames(path, range(12), size=(32, 40), backend="pyav")
    with av.open(str(path)) as c:
        theirs = np.stack([f.reformat(width=40, height=32, format="rgb24").to_ndarray() for f in c.decode(video=0)])
    np.testing.assert_array_equal(ours, theirs)


def test_a_bad_video_is_decoded_once_per_pass(tmp_path, monkeypatch):
    """Listed three times in one pass (workers=0: the run-wide record is updated only after the pass),
    the truncated video is decoded once; the good one each time."""
    from torch.utils.data import Subset

    root = _folder_dataset(tmp_path / "videos")
    manifest = load_dataset(root)
    bad = next(i for i, e in enumerate(manifest.entries) if "truncated" in str(e.path))
    good = next(i for i, e in enumerate(manifest.entries) if "truncated" not in str(e.path))
    calls: list[str] = []

    def counting(path, *args, **kwargs):
        calls.append(Path(path).name)
        return read_frames(path, *args, **kwargs)

    monkeypatch.setattr("edgekd.data.dataset.read_frames", counting)
    dataset = ClipDataset(manifest, default_data_spec(manifest, frames=8, size=32), mode="eval")
    loader = make_loader(Subset(dataset, [bad, good, bad, good, bad]), batch_size=1, shuffle=False, num_workers=0)
    indices = [int(i) for batch in loader for i in batch["index"]]
    assert indices == [good, good]
    assert calls.count("truncated.avi") == 1 and calls.count(manifest.entries[good].path.name) == 2
