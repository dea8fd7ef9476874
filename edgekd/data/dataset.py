"""ClipDataset: manifest entries -> decoded, sampled, transformed clips; make_loader batches them.

Batch (from make_loader):
    {"video":  float32 (B, C, T, H, W), or (B, n, C, T, H, W) when clips_per_video > 1 or mode="multiview",
               normalized with the spec's mean/std,
     "label":  long (B,) (-1 for unlabeled videos),
     "index":  long (B,), positions in manifest.entries,
     "starts": long (B, n), start frame of each clip}

Item (one video, `dataset[i]`): the same keys for one video: "video" (C, T, H, W) or (n, C, T, H, W),
"label" int, "index" int, "starts" (n,) (each start repeated per spatial crop in multiview).
Inside a DataLoader worker, "video" stays uint8 and "colour" carries each clip's colour map ((3, 4)
or (n, 3, 4)): the loader makes the whole batch normalized float in one op in the main process
(transforms.finish), so workers spend their time decoding and send a quarter of the bytes.

Modes: "train" = random clips + augmentation; "eval" = uniformly spaced clips, centre crop;
"multiview" = K uniformly spaced clips x S spatial crops (S = 3: start/centre/end of the long side).

Loader workers are forked. Nothing they inherit may hold decoder threads (edgekd.data.decode frees
its readers and scalers before returning), each worker dies with its parent, and a worker that
delivers nothing for `timeout_s` (default 300, `$EDGEKD_LOADER_TIMEOUT_S`) becomes a LoaderStalled
error naming the video each worker was decoding.

A video that fails to decode does not kill an epoch, nor is it decoded again: the item carries the
(path, reason) instead of a clip, the collate drops it, and the loader, in the main process, adds the
failures of its pass to the manifest's SkippedVideos record (one warning line for the new ones).
Videos in the record are never decoded again in that run; a batch is skipped only if all its videos
failed.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import sys
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from edgekd.data.spec import DataSpec
from edgekd.data.decode import BACKENDS, failure_reason, probe_cached, read_frames
from edgekd.data.manifest import Manifest
from edgekd.data.sampling import clip_indices, random_starts, three_crops, uniform_starts, window_starts
from edgekd.data.transforms import IDENTITY, AugmentConfig, crop, eval_transform, finish, to_cthw, to_tchw, train_transform
from edgekd.errors import ConfigError, LoaderStalled, VideoDecodeError

MODES = ("train", "eval", "multiview")
SAMPLINGS = ("random", "uniform", "window", "center-window")  # edgekd.data.sampling
DEFAULT_VIEWS = (5, 3)  # K clips x 3 crops for the multi-view test protocol
DEFAULT_TIMEOUT_S = 300.0  # a batch of clips decodes in seconds; five minutes of silence is a hang
_BOARD_BYTES = 4096  # per worker: the path of the video it is decoding


class ClipDataset(Dataset):
    def __init__(self, manifest: Manifest, spec: DataSpec, mode: str = "train", clips_per_video: int = 1,
                 backend: str = "auto", num_views: tuple[int, int] = DEFAULT_VIEWS,
                 augment: AugmentConfig | None = None, sampling: str | None = None):
        if mode not in MODES:
            raise ConfigError(f"unknown dataset mode {mode!r}", f"choose one of {', '.join(MODES)}")
        if backend not in BACKENDS:
            raise ConfigError(f"unknown decode backend {backend!r}", f"choose one of {', '.join(BACKENDS)}")
        if clips_per_video < 1 or num_views[0] < 1 or num_views[1] not in (1, 3):
            raise ConfigError(f"clips_per_video={clips_per_video}, num_views={num_views} are invalid",
                              "clips_per_video >= 1; num_views = (K >= 1, 1 or 3 crops)")
        self.sampling = sampling or ("random" if mode == "train" else "uniform")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"unknown clip sampling {sampling!r}", "choose one of " + ", ".join(SAMPLINGS))
        self.manifest, self.spec, self.mode, self.backend = manifest, spec, mode, backend
        self.entries = manifest.entries
        self.clips_per_video = clips_per_video
        self.num_views = (int(num_views[0]), int(num_views[1]))
        self.augment = augment or AugmentConfig.for_manifest(manifest.defaults)
        self.decode_size = self.augment.decode_size(spec.size)  # short side at decode
        self._train_tf = train_transform(spec.size, self.augment)
        self._eval_tf = eval_transform(spec.size)
        self._failed_here: set[str] = set()  # failed in this process (the loader records them run-wide)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict[str, Any]:
        entry = self.entries[i]
        path = str(entry.path)
        if path in self.manifest.skipped or path in self._failed_here:  # known bad: reported once already
            return {"index": i}
        _post(path)
        try:
            item = self._load(i, entry)
        except VideoDecodeError as e:
            self._failed_here.add(path)  # this process (a worker) never decodes it again
            return {"index": i, "failed": (path, failure_reason(e, path))}
        if get_worker_info() is None:  # in the main process: finish here; a worker leaves it to the loader
            item["video"] = finish(item["video"], item.pop("colour"), self.spec.mean, self.spec.std)
        return item

    def _load(self, i: int, entry) -> dict[str, Any]:
        spec = self.spec
        info = probe_cached(entry.path)
        n = self.num_views[0] if self.mode == "multiview" else self.clips_per_video
        if self.sampling in ("random", "window"):
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))  # follows the worker's torch seed
            draw = random_starts if self.sampling == "random" else window_starts
            starts = draw(info.num_frames, spec.frames, spec.frame_stride, n, rng)
        elif self.sampling == "center-window":
            starts = window_starts(info.num_frames, spec.frames, spec.frame_stride, n)
        else:
            starts = uniform_starts(info.num_frames, spec.frames, spec.frame_stride, n)
        idx = clip_indices(starts, spec.frames, spec.frame_stride, info.num_frames)  # (n, T)
        frames = read_frames(entry.path, idx.ravel(), size=self.decode_size, backend=self.backend)
        frames = frames.reshape(n, spec.frames, *frames.shape[1:])  # (n, T, H, W, 3)

        if self.mode == "train":
            clips = [self._train_tf(f) for f in frames]
        elif self.mode == "eval":
            clips = [self._eval_tf(f) for f in frames]
        else:  # multiview: every clip at every spatial crop
            h, w = frames.shape[2:4]
            boxes = three_crops(h, w, min(spec.size, h, w)) if self.num_views[1] == 3 else [((h - spec.size) // 2,
                                                                                            (w - spec.size) // 2)]
            clips = [(to_cthw(to_tchw(crop(f, top, left, spec.size))), IDENTITY) for f in frames for top, left in boxes]
            starts = np.repeat(starts, len(boxes))
        single = self.mode != "multiview" and self.clips_per_video == 1
        video, colour = zip(*clips)
        return {
            "video": video[0] if single else torch.stack(video),  # uint8 (C,T,H,W) or (n,C,T,H,W)
            "colour": colour[0] if single else torch.stack(colour),  # (3, 4) or (n, 3, 4)
            "label": -1 if entry.label is None else int(entry.label),
            "index": i,
            "starts": torch.as_tensor(starts, dtype=torch.long),
        }


def collate_clips(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the items that hold a clip; "failed" lists (path, reason) of the videos that just failed."""
    ok = [b for b in batch if "video" in b]
    failed = [b["failed"] for b in batch if "failed" in b]
    if not ok:
        empty = torch.zeros(0, dtype=torch.long)
        return {"video": torch.zeros(0), "label": empty, "index": empty, "starts": empty, "failed": failed}
    colour = {"colour": torch.stack([b["colour"] for b in ok])} if "colour" in ok[0] else {}  # (B, [n,] 3, 4)
    return {
        "video": torch.stack([b["video"] for b in ok]),                   # (B, C, T, H, W) or (B, n, ...)
        **colour,
        "label": torch.tensor([b["label"] for b in ok], dtype=torch.long),  # (B,)
        "index": torch.tensor([b["index"] for b in ok], dtype=torch.long),  # (B,)
        "starts": torch.stack([b["starts"] for b in ok]),                  # (B, n)
        "failed": failed,
    }


class ClipLoader(DataLoader):
    """A DataLoader that, in the main process, makes each batch's clips normalized float in one op,
    records the videos that failed during a pass in the run's SkippedVideos (where the reporter is:
    one line per pass at most), skips batches in which every video failed, and turns a worker that
    stays silent past `timeout` into a LoaderStalled error naming the video it was decoding."""

    def __init__(self, dataset: Dataset, num_workers: int = 0, **kwargs):
        # (workers, _BOARD_BYTES) shared bytes: each worker writes the path it is decoding into its row
        self.board = torch.zeros(max(1, num_workers), _BOARD_BYTES, dtype=torch.uint8).share_memory_()
        super().__init__(dataset, num_workers=num_workers, worker_init_fn=_WorkerInit(self.board) if num_workers else None,
                         **kwargs)

    def __iter__(self):
        clips = _clip_dataset(self.dataset)
        spec = clips.spec
        failed: list[tuple[str, str]] = []
        batches = super().__iter__()
        try:
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except RuntimeError as e:
                    if "timed out" not in str(e):
                        raise
                    raise self._stalled() from None
                failed += batch.pop("failed")
                if len(batch["index"]):
                    if "colour" in batch:  # uint8 from workers
                        batch["video"] = finish(batch["video"], batch.pop("colour"), spec.mean, spec.std)
                    yield batch
        finally:  # also when the consumer stops early or fails
            clips.manifest.skipped.add(failed)

    def _stalled(self) -> LoaderStalled:
        """Stop the (persistent) workers and say which videos they were on."""
        videos = [bytes(row[row > 0].tolist()).decode(errors="replace") for row in self.board]
        if self._iterator is not None:
            self._iterator._shutdown_workers()  # joins briefly, then terminates the stuck workers
            self._iterator = None
        on = "; ".join(f"worker {w}: {v}" for w, v in enumerate(videos) if v) or "no video yet"
        return LoaderStalled(f"a data-loader worker delivered nothing for {self.timeout:.0f} s (decoding {on})",
                             "check that video with `edgekd data check`, remove it, or run with "
                             "--set data.workers=0 to decode in the main process")


_board: tuple[torch.Tensor, int] | None = None  # in a worker: the loader's board and this worker's row


def _post(path: str) -> None:
    """In a worker, note the video it is about to decode (read by the main process after a stall)."""
    if _board is not None:
        board, row = _board
        data = path.encode()[: _BOARD_BYTES]
        board[row].zero_()
        board[row, : len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _clip_dataset(dataset: Dataset) -> ClipDataset:
    """The ClipDataset under wrappers that hold it as `.dataset` (torch's Subset, distill's EpochItems)."""
    while not isinstance(dataset, ClipDataset):
        dataset = dataset.dataset
    return dataset


class _WorkerInit:
    """Runs first in every worker: die with the parent, seed numpy/random, find the stall board."""

    def __init__(self, board: torch.Tensor):
        self.board, self.parent = board, os.getpid()

    def __call__(self, worker_id: int) -> None:
        global _board
        if sys.platform.startswith("linux"):  # killed when the main process dies, even mid-decode
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() != self.parent:  # the parent died before prctl took effect
                os._exit(1)
        _board = (self.board, worker_id)
        # torch seeds each worker from the loader's generator; numpy and random follow it, and one
        # decode/transform thread per worker keeps the 2 workers from oversubscribing the cores.
        seed = torch.initial_seed() % 2**32
        np.random.seed(seed)
        random.seed(seed)
        torch.set_num_threads(1)


def loader_timeout() -> float:
    """Seconds a loader waits for a batch before LoaderStalled: $EDGEKD_LOADER_TIMEOUT_S or 300."""
    value = os.environ.get("EDGEKD_LOADER_TIMEOUT_S", "")
    try:
        return float(value) if value else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ConfigError(f"EDGEKD_LOADER_TIMEOUT_S={value!r} is not a number of seconds",
                          "set it to e.g. 300, or unset it") from None


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int = 2, sampler=None,
                drop_last: bool = False, seed: int = 0) -> DataLoader:
    """Batches from `dataset` with persistent workers; the same seed gives the same clips and order.

    With num_workers=0 clips follow the process's global torch RNG (seed it for determinism).
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    workers = max(0, int(num_workers))
    return ClipLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_clips,
        drop_last=drop_last,
        generator=generator,
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers else None,
        timeout=loader_timeout() if workers else 0,
    )
