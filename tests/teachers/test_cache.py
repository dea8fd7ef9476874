"""Teacher output cache: round trip against the live teachers, staleness, corruption."""

import os
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.data.manifest import Manifest, default_data_spec
from edgekd.errors import TeacherError
from edgekd.teachers.cache import StaleCacheError, TeacherCache, build_cache
from edgekd.teachers.ssl_teacher import build_ssl_teacher
from edgekd.teachers.timebalance import temporal_similarity

K = 2


@pytest.fixture
def dataset(tiny_synth, tmp_path):
    """A private copy of the tiny synthetic dataset (tests touch its files), 8 of its videos."""
    root = shutil.copytree(tiny_synth.parent, tmp_path / "data")
    m = Manifest.load(root / "manifest.json")
    return m.subset(m.entries[::3]), default_data_spec(m)


def make_teachers(spec, seed=0):
    torch.manual_seed(seed)
    teachers = {}
    for name in ("invariant", "distinctive"):
        t = build_ssl_teacher(name, spec, "tiny3d", {"width": 0.25})
        t.attach_head(nn.Linear(t.embed_dim, spec.num_classes), spec.num_classes)
        teachers[name] = t.freeze()
    return teachers


def live_clips(manifest, spec):
    """The clips the cache keys: K uniform starts per video, decoded the way the cache builder does."""
    from edgekd.data.dataset import ClipDataset

    ds = ClipDataset(manifest, spec, mode="eval", clips_per_video=K)
    items = [ds[i] for i in range(len(ds))]
    return torch.stack([it["video"] for it in items]), torch.stack([it["starts"] for it in items])


@pytest.fixture
def built(dataset, tmp_path):
    manifest, spec = dataset
    teachers = make_teachers(spec)
    cache = build_cache(teachers, manifest, spec, tmp_path / "cache", clips_per_video=K, temporal=True,
                        batch_size=4, num_workers=0, progress=False)
    return manifest, spec, teachers, cache


def test_round_trip_equals_live_teacher_outputs(built):
    manifest, spec, teachers, cache = built
    ids = [e.video_id for e in manifest.entries]
    clips, starts = live_clips(manifest, spec)                   # (N, K, 3, T, H, W), (N, K)
    flat = clips.flatten(0, 1)
    for name, t in teachers.items():
        with torch.no_grad():
            emb, logits, temporal = t.embed(flat), t.logits(flat), t.embed_temporal(flat)
        tol = dict(atol=2e-3, rtol=2e-3)                         # fp16 storage
        assert torch.allclose(cache.embed(name, ids, starts), emb.reshape(len(ids), K, -1), **tol)
        assert torch.allclose(cache.logits(name, ids, starts), logits.reshape(len(ids), K, -1), **tol)
        assert torch.allclose(cache.temporal(name, ids, starts), temporal.reshape(len(ids), K, *temporal.shape[1:]), **tol)
        # one clip per video: (B,) starts -> (B, D)
        one = cache.embed(name, ids, starts[:, 1])
        assert one.shape == (len(ids), t.embed_dim) and one.dtype == torch.float32
        assert torch.allclose(one, emb.reshape(len(ids), K, -1)[:, 1], **tol)
    with torch.no_grad():
        z = {n: t.projection.eval()(t.embed(flat)).reshape(len(ids), K, -1) for n, t in teachers.items()}
    s = temporal_similarity(z["invariant"], z["distinctive"])  # Eqs. 5-6 on projections of the K cached clips
    assert torch.allclose(cache.scores(ids), s, atol=2e-3)
    assert cache.starts(ids[0]) == starts[0].tolist()
    stored = np.load(cache.path / "invariant.embed.npy", mmap_mode="r")
    assert stored.dtype == np.float16 and isinstance(stored, np.memmap)


def test_valid_cache_is_reused_untouched(built, tmp_path):
    manifest, spec, teachers, cache = built
    before = {f.name: f.stat().st_mtime_ns for f in cache.path.iterdir()}
    again = build_cache(teachers, manifest, spec, tmp_path / "cache", clips_per_video=K, temporal=True,
                        num_workers=0, progress=False)
    assert {f.name: f.stat().st_mtime_ns for f in again.path.iterdir()} == before
    TeacherCache.open(cache.path, teachers=teachers, data_spec=spec)   # fingerprints and spec match


def test_changed_teacher_weights_are_detected(built, tmp_path):
    manifest, spec, teachers, cache = built
    with torch.no_grad():
        next(teachers["invariant"].parameters()).add_(0.1)
    teachers["invariant"]._fingerprint = None
    with pytest.raises(StaleCacheError, match="other weights of teacher 'invariant'") as e:
        TeacherCache.open(cache.path, teachers=teachers)
    assert "--force" in e.value.hint
    with pytest.raises(StaleCacheError):                            # no silent overwrite either
        build_cache(teachers, manifest, spec, tmp_path / "cache", clips_per_video=K, num_workers=0, progress=False)
    rebuilt = build_cache(teachers, manifest, spec, tmp_path / "cache", clips_per_video=K, num_workers=0,
                          progress=False, force=True)
    assert rebuilt.fingerprint("invariant") == teachers["invariant"].fingerprint
    other_spec = default_data_spec(manifest, size=48)
    with pytest.raises(StaleCacheError, match="data spec"):
        TeacherCache.open(cache.path, data_spec=other_spec)


def test_touched_video_is_detected(built):
    manifest, spec, teachers, cache = built
    touched = manifest.entries[0]
    st = touched.path.stat()
    os.utime(touched.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    reopened = TeacherCache.open(cache.path, teachers=teachers, data_spec=spec)
    assert list(reopened.stale) == [touched.video_id]
    with pytest.raises(StaleCacheError, match="changed since the cache was built"):
        reopened.embed("invariant", [touched.video_id])
    fine = manifest.entries[1].video_id
    assert reopened.embed("invariant", [fine]).shape == (1, K, teachers["invariant"].embed_dim)


def test_unknown_clip_start_is_an_error(built):
    manifest, _, _, cache = built
    vid = manifest.entries[0].video_id
    with pytest.raises(TeacherError, match="no clip of"):
        cache.embed("invariant", [vid], torch.tensor([max(cache.starts(vid)) + 1]))


def test_corrupted_cache_files_give_a_clear_error(built):
    _, _, teachers, cache = built
    path = cache.path
    data = (path / "distinctive.logits.npy").read_bytes()
    (path / "distinctive.logits.npy").write_bytes(data[:-7])       # truncated
    with pytest.raises(TeacherError, match="corrupted") as e:
        TeacherCache.open(path)
    assert "rebuild" in e.value.hint
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF                                             # same size, one value changed
    (path / "distinctive.logits.npy").write_bytes(bytes(flipped))
    with pytest.raises(TeacherError, match="sha256"):
        TeacherCache.open(path)
    (path / "index.json").write_text('{"format": "edgekd-teacher-cache", "vers')
    with pytest.raises(TeacherError, match="corrupted"):
        TeacherCache.open(path)


def test_refuses_to_replace_a_folder_that_is_not_a_cache(dataset, tmp_path):
    manifest, spec = dataset
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(TeacherError, match="not a teacher cache"):
        build_cache(make_teachers(spec), manifest, spec, precious, force=True, num_workers=0, progress=False)
    assert (precious / "notes.txt").read_text() == "keep me"
