"""Training clips for teacher pretraining, decoded once and sampled from memory.

Contrastive pretraining runs many epochs over the same few hundred videos; decoding and
transforming every clip again each epoch would cost more CPU than the network. `ClipBank` decodes
each video once (edgekd.data.decode, at the run's clip size), keeps the uint8 frames in memory and
draws clips from them: a random start (edgekd.data.sampling), one random square crop per clip of
60-100 % of the short side resized to the clip size, no flip (it would swap "left" and "right"
in the captions). Datasets too large to hold (`max_mb`) fall back to the streaming ClipDataset.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from edgekd.checkpoint import DataSpec
from edgekd.errors import DataError, VideoDecodeError
from edgekd.teachers.vl_progress import progress_bar


class ClipBank:
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
