"""ClipDataset and make_loader over the tiny synthetic set (real H.264 files, real decoders)."""

import dataclasses
import io
import shutil

import pytest
import torch
from rich.console import Console

from edgekd.data.dataset import ClipDataset, collate_clips, make_loader
from edgekd.data.manifest import VideoEntry, default_data_spec
from edgekd.data.splits import make_split
from edgekd.errors import ConfigError


@pytest.fixture
def spec(tiny_manifest):
    return default_data_spec(tiny_manifest)  # 8 frames x 32 px, stride 1


def test_train_item(tiny_manifest, spec):
    item = ClipDataset(tiny_manifest, spec, mode="train")[3]
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.float32
    assert item["label"] == tiny_manifest.entries[3].label and item["index"] == 3
    assert item["starts"].dtype == torch.long and item["starts"].shape == (1,)


def test_n_clips_of_one_video_for_timebalance(tiny_manifest, spec):
    item = ClipDataset(tiny_manifest, spec, mode="train", clips_per_video=4)[0]
    assert item["video"].shape == (4, 3, 8, 32, 32)
    assert (item["starts"].diff() >= 0).all()
    assert not torch.equal(item["video"][0], item["video"][3])


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_eval_is_deterministic_and_backends_agree(tiny_manifest, spec, backend):
    a = ClipDataset(tiny_manifest, spec, mode="eval", backend=backend)[5]
    b = ClipDataset(tiny_manifest, spec, mode="eval", backend=backend)[5]
    assert torch.equal(a["video"], b["video"]) and a["starts"].tolist() == [4]  # centre of 16 frames
    other = ClipDataset(tiny_manifest, spec, mode="eval", backend="pyav" if backend == "decord" else "decord")[5]
    assert (a["video"] - other["video"]).abs().mean() < 0.05


def test_a_worker_sends_uint8_and_the_loader_finishes_the_batch_alike(tiny_manifest, spec, monkeypatch):
    ds = ClipDataset(tiny_manifest, spec, mode="eval", clips_per_video=2)
    in_main = torch.stack([ds[4]["video"], ds[5]["video"]])  # float, normalized
    monkeypatch.setattr("edgekd.data.dataset.get_worker_info", lambda: object())  # as inside a worker
    in_worker = ds[4]
    assert in_worker["video"].dtype == torch.uint8 and in_worker["colour"].shape == (2, 3, 4)
    batch = next(iter(make_loader(ds, batch_size=2, shuffle=False, num_workers=0, sampler=[4, 5])))
    assert "colour" not in batch and torch.allclose(batch["video"], in_main, atol=1e-6)


def test_multiview_is_k_clips_times_3_crops(tiny_manifest, spec):
    item = ClipDataset(tiny_manifest, spec, mode="multiview", num_views=(4, 3))[0]
    assert item["video"].shape == (12, 3, 8, 32, 32)
    assert item["starts"].tolist() == [0, 0, 0, 3, 3, 3, 5, 5, 5, 8, 8, 8]


def test_unlabeled_videos_have_label_minus_one(tiny_manifest, spec):
    _, unlabeled = make_split(tiny_manifest, labeled_per_class=1).apply(tiny_manifest)
    assert ClipDataset(unlabeled, spec)[0]["label"] == -1


def test_synthetic_defaults_turn_flip_off(tiny_manifest, spec):
    assert ClipDataset(tiny_manifest, spec).augment.hflip is False


def test_bad_arguments(tiny_manifest, spec):
    for kwargs in ({"mode": "test"}, {"backend": "cv2"}, {"clips_per_video": 0}, {"num_views": (2, 2)}):
        with pytest.raises(ConfigError):
            ClipDataset(tiny_manifest, spec, **kwargs)


def _with_corrupt_videos(manifest, tmp_path):
    (tmp_path / "broken.mp4").write_text("not a video")
    shutil.copy(manifest.entries[0].path, tmp_path / "cut.mp4")
    data = (tmp_path / "cut.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    bad = [VideoEntry(tmp_path / "broken.mp4", 0, "train", None, "broken"),
           VideoEntry(tmp_path / "cut.mp4", 1, "train", None, "cut")]
    return dataclasses.replace(manifest, entries=bad + manifest.entries[:6])


def _bad_in_two_batches(manifest, tmp_path):
    """6 good videos with the 2 corrupt ones at positions 1 and 6: batches of 4 meet one each."""
    m = _with_corrupt_videos(manifest, tmp_path)
    good = m.entries[2:]
    return dataclasses.replace(m, entries=good[:1] + m.entries[:1] + good[1:5] + m.entries[1:2] + good[5:])


def _recording_reporter():
    from edgekd.report import Reporter

    buf = io.StringIO()
    return Reporter(Console(file=buf, width=60, soft_wrap=True)), buf


@pytest.mark.parametrize("workers", [0, 2])
def test_failed_videos_are_dropped_reported_once_and_never_decoded_again(tiny_manifest, spec, tmp_path,
                                                                         monkeypatch, workers):
    manifest = _bad_in_two_batches(tiny_manifest, tmp_path)
    reporter, buf = _recording_reporter()
    manifest.skipped.report_to(reporter)
    ds = ClipDataset(manifest, spec, mode="eval")
    epochs = [list(make_loader(ds, batch_size=4, shuffle=False, num_workers=workers)) for _ in range(3)]
    for batches in epochs:
        assert [b["index"].tolist() for b in batches] == [[0, 2, 3], [4, 5, 7]]
        assert batches[0]["video"].shape == (3, 3, 8, 32, 32) and "failed" not in batches[0]
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: skipping 2 video(s)")  # one line, three epochs
    assert str(tmp_path / "broken.mp4") in lines[0] and str(tmp_path / "cut.mp4") in lines[0]
    assert dict(manifest.skipped).keys() == {str(tmp_path / "broken.mp4"), str(tmp_path / "cut.mp4")}

    calls = []
    monkeypatch.setattr("edgekd.data.dataset.read_frames", lambda *a, **k: calls.append(a[0]))
    monkeypatch.setattr("edgekd.data.dataset.probe_cached", lambda p: calls.append(p))
    assert ds[1] == {"index": 1} and ds[6] == {"index": 6} and calls == []  # known bad: no decode

    rows = [line.split("\t") for line in manifest.skipped.write(tmp_path).read_text().splitlines()]
    assert sorted(p for p, _ in rows) == sorted([str(tmp_path / "broken.mp4"), str(tmp_path / "cut.mp4")])
    assert all(reason for _, reason in rows) and (tmp_path / "skipped_videos.txt").is_file()


def test_a_batch_of_only_failed_videos_is_skipped(tiny_manifest, spec, tmp_path):
    ds = ClipDataset(_with_corrupt_videos(tiny_manifest, tmp_path), spec, mode="eval")
    batches = list(make_loader(ds, batch_size=2, shuffle=False, num_workers=0))
    assert [b["index"].tolist() for b in batches] == [[2, 3], [4, 5], [6, 7]]
    empty = collate_clips([{"index": 0, "failed": ("x.mp4", "empty")}, {"index": 1}])
    assert empty["video"].shape[0] == 0 and empty["failed"] == [("x.mp4", "empty")]


def test_loader_with_workers_is_deterministic_given_the_seed(tiny_manifest, spec):
    ds = ClipDataset(tiny_manifest.subset(tiny_manifest.entries[:8]), spec, mode="train", clips_per_video=2)

    def two_epochs(seed):
        loader = make_loader(ds, batch_size=4, shuffle=True, num_workers=2, seed=seed)
        return [[b for b in loader] for _ in range(2)]

    a, b, c = two_epochs(0), two_epochs(0), two_epochs(1)
    for x, y in zip(a[0] + a[1], b[0] + b[1]):
        assert torch.equal(x["index"], y["index"]) and torch.equal(x["video"], y["video"])
    assert sum(len(x["index"]) for x in a[0]) == len(ds)
    assert not torch.equal(a[0][0]["video"], a[1][0]["video"])  # a new epoch draws new clips
    assert not torch.equal(a[0][0]["index"], c[0][0]["index"])
    assert a[0][0]["video"].shape == (4, 2, 3, 8, 32, 32) and a[0][0]["starts"].shape == (4, 2)
    assert a[0][0]["video"].dtype == torch.float32 and "colour" not in a[0][0]  # the loader finished them
    assert a[0][0]["video"].mean().abs() < 3  # normalized, not bytes
