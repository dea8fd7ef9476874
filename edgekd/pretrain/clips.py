"""Where pretraining loops get their clips: the split's videos, decoded once into memory or streamed.

    ClipBank(videos, spec)          the videos decoded once (uint8 frames at the clip size): one random
                                    crop clip per video per draw (vision-language alignment)
    loader_batches(...)             its streaming fallback: a ClipDataset epoch
    unlabeled(manifest, split)      the split's unlabeled training videos (labels hidden)
    MemoryClips / StreamedClips     n clips per video, sorted in time (the SSL pair, PCL)
    clip_source(videos, spec, n, batch_size, ...)
                                    one of the two, and the batch size it can fill

Contrastive pretraining runs many epochs over the same few hundred videos; decoding and
transforming every clip again each epoch would cost more CPU than the network, so `ClipBank` keeps
the decoded frames (edgekd.data.decode, at the run's clip size) and draws clips from them: a random
start (edgekd.data.sampling), one random square crop per clip of 60-100 % of the short side resized
to the clip size, no flip (it would swap "left" and "right" in the captions). Datasets too large to
hold (`max_mb`) fall back to the streaming ClipDataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError, DataError, TeacherError, VideoDecodeError
from edgekd.teachers.vl_progress import progress_bar

DATA_MODES = ("auto", "memory", "stream")


class ClipBank:
    """The training videos decoded once (uint8 frames at the clip size), and clips drawn from them."""

    def __init__(self, manifest, spec: DataSpec, crop_scale: tuple[float, float] = (0.6, 1.0),
                 quiet: bool = False):
        from edgekd.data.decode import failure_reason, probe_cached, read_frames

        self.spec, self.crop_scale = spec, crop_scale
        self.videos: list[torch.Tensor] = []   # uint8 (N_frames, H, W, 3) per video, H = spec.size
        self.keep: list[int] = []               # manifest positions of the videos that decoded
        failed = []
        with progress_bar("decode", len(manifest.entries), unit="videos", quiet=quiet) as advance:
            for i, entry in enumerate(manifest.entries):
                if entry.path in manifest.skipped:      # known bad in this run: never decoded again
                    advance(1)
                    continue
                try:
                    n = probe_cached(entry.path).num_frames
                    frames = read_frames(entry.path, range(n), size=spec.size)
                    self.videos.append(torch.from_numpy(np.ascontiguousarray(frames)))
                    self.keep.append(i)
                except VideoDecodeError as e:
                    failed.append((str(entry.path), failure_reason(e, entry.path)))
                advance(1)
        manifest.skipped.add(failed)                    # one warning line, through the run's reporter
        if len(self.videos) < 2:
            raise DataError("fewer than 2 training videos could be decoded", "check the dataset's video files")
        self.mean = torch.tensor(spec.mean).view(3, 1, 1, 1)
        self.std = torch.tensor(spec.std).view(3, 1, 1, 1)

    def __len__(self) -> int:
        return len(self.videos)

    @staticmethod
    def estimate_mb(manifest, spec: DataSpec, frames_per_video: int = 300) -> float:
        """A pessimistic memory estimate for holding the decoded videos (4:3 frames, long videos)."""
        return len(manifest.entries) * frames_per_video * spec.size * spec.size * 4 / 3 * 3 / 2**20

    def clip(self, k: int, gen: torch.Generator) -> torch.Tensor:
        """A random training clip of bank video k -> float (3, T, S, S) normalized with spec mean/std."""
        from edgekd.data.sampling import clip_indices, random_starts

        spec, video = self.spec, self.videos[k]
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (), generator=gen)))
        start = random_starts(len(video), spec.frames, spec.frame_stride, 1, rng)
        idx = torch.from_numpy(clip_indices(start, spec.frames, spec.frame_stride, len(video))[0])
        frames = video[idx].permute(3, 0, 1, 2).float().div_(255)            # (3, T, H, W)
        h, w = frames.shape[2:]
        side = int(min(h, w) * rng.uniform(*self.crop_scale) ** 0.5)
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        frames = frames[:, :, top:top + side, left:left + side]
        if side != spec.size:
            frames = F.interpolate(frames, size=(spec.size, spec.size), mode="bilinear", align_corners=False,
                                   antialias=True)
        return (frames - self.mean) / self.std

    def batches(self, batch_size: int, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch: shuffled (clips (B, 3, T, S, S), manifest positions (B,)); the last partial batch dropped."""
        order = torch.randperm(len(self.videos), generator=gen)
        for b in range(len(order) // batch_size):
            ks = order[b * batch_size:(b + 1) * batch_size].tolist()
            x = torch.stack([self.clip(k, gen) for k in ks])
            yield x, torch.tensor([self.keep[k] for k in ks])


def loader_batches(manifest, spec: DataSpec, batch_size: int, num_workers: int, seed: int):
    """The streaming fallback: a ClipDataset epoch as (clips, manifest positions) pairs."""
    from edgekd.data.dataset import ClipDataset, make_loader

    loader = make_loader(ClipDataset(manifest, spec, mode="train"), batch_size, shuffle=True,
                         num_workers=num_workers, drop_last=True, seed=seed)

    def epoch(gen: torch.Generator):
        for batch in loader:
            yield batch["video"], batch["index"]

    return epoch


def unlabeled(manifest, split) -> Any:
    """The split's unlabeled training videos (labels hidden) as a Manifest."""
    if isinstance(split, (str, Path)):
        from edgekd.data.splits import SemiSplit

        split = SemiSplit.load(split)
    _, unlabeled = split.apply(manifest)
    unlabeled = unlabeled.subset(e for e in unlabeled.entries if e.split == "train")
    if len(unlabeled.entries) < 2:
        raise TeacherError(f"the split leaves {len(unlabeled.entries)} unlabeled training video(s); "
                           "self-supervised pretraining needs at least 2",
                           "use a split with a smaller labeled fraction, or more videos")
    return unlabeled


class MemoryClips:
    """The unlabeled videos decoded once into memory; each epoch draws n clips per video from them.

    Clip starts follow the data layer's sampling (edgekd.data.sampling), as ClipDataset(mode="train",
    clips_per_video=n, sampling=...) does: "random" = one random start in each of n equal segments,
    sorted in time; "window" = n back-to-back clips in one random window (the authors'). Videos are not
    decoded again each epoch: contrastive pretraining runs many epochs.
    """

    def __init__(self, videos, spec: DataSpec, quiet: bool, sampling: str = "random"):
        self.videos = videos
        self.bank, self.spec, self.sampling = ClipBank(videos, spec, quiet=quiet), spec, sampling

    def __len__(self) -> int:
        return len(self.bank)

    def _clips(self, k: int, n: int, gen: torch.Generator) -> torch.Tensor:
        from edgekd.data.sampling import clip_indices, random_starts, window_starts

        spec, video = self.spec, self.bank.videos[k]                 # uint8 (frames, H, W, 3)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (), generator=gen)))
        draw = window_starts if self.sampling == "window" else random_starts
        starts = draw(len(video), spec.frames, spec.frame_stride, n, rng)
        idx = torch.from_numpy(clip_indices(starts, spec.frames, spec.frame_stride, len(video)))
        frames = video[idx]                                          # (n, T, H, W, 3)
        h, w = frames.shape[2:4]
        top, left = (h - spec.size) // 2, (w - spec.size) // 2      # the bank's short side is spec.size
        frames = frames[:, :, top:top + spec.size, left:left + spec.size]
        x = frames.permute(0, 4, 1, 2, 3).float().div_(255)         # (n, 3, T, S, S)
        return (x - self.bank.mean) / self.bank.std

    def epoch(self, batch_size: int, n: int, gen: torch.Generator):
        order = torch.randperm(len(self.bank), generator=gen).tolist()
        for b in range(len(order) // batch_size):
            yield torch.stack([self._clips(k, n, gen) for k in order[b * batch_size:(b + 1) * batch_size]])


class StreamedClips:
    """Datasets too large to hold: ClipDataset(clips_per_video=n) with random starts, decoded each epoch."""

    def __init__(self, videos, spec: DataSpec, n: int, batch_size: int, num_workers: int, seed: int,
                 sampling: str = "random"):
        from edgekd.data.dataset import ClipDataset, make_loader

        self.videos = videos
        # centre crop only: `augment` crops and jitters the batch (far cheaper than per-frame transforms)
        self.dataset = ClipDataset(videos, spec, mode="eval", sampling=sampling, clips_per_video=n)
        self.loader = make_loader(self.dataset, batch_size, shuffle=True, num_workers=num_workers,
                                  drop_last=True, seed=seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def epoch(self, batch_size: int, n: int, gen: torch.Generator):
        for batch in self.loader:
            yield batch["video"]


def clip_source(videos, spec: DataSpec, n: int, batch_size: int, *, data: str = "auto", max_mb: float = 2048,
                num_workers: int = 2, seed: int = 0, sampling: str = "random", quiet: bool = False):
    """(a source of n clips per video over `videos`, the batch size it fills). `data`: "memory" decodes
    the videos once, "stream" decodes clips every epoch, "auto" picks memory when ClipBank's estimate
    fits `max_mb`. In memory the batch is at most the number of videos that decoded (>= 1 batch per epoch)."""
    if data not in DATA_MODES:
        raise ConfigError(f"unknown data mode {data!r}", "choose " + ", ".join(DATA_MODES))
    if data == "memory" or (data == "auto" and ClipBank.estimate_mb(videos, spec) <= max_mb):
        source = MemoryClips(videos, spec, quiet=quiet, sampling=sampling)
        return source, min(batch_size, len(source))
    batch_size = min(batch_size, len(videos.entries))
    return StreamedClips(videos, spec, n, batch_size, num_workers, seed, sampling), batch_size
