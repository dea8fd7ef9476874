"""The run's data: dataset, labeled/unlabeled split, DataSpec, and each epoch's batch streams.

An epoch is `steps` optimizer steps. Each step takes one labeled batch and, when the recipe uses
them, one unlabeled batch: the papers iterate the unlabeled set once per epoch and cycle the small
labeled set alongside it. `steps` is the length of the LONGER of the two passes and does not depend
on the recipe, so every recipe of a comparison gets the same number of steps and labeled batches.

Each stream is one list of video indices per epoch: shuffled passes over the set, concatenated
until `steps` full batches are filled, each pass seeded by (seed, epoch, pass). Under DDP each rank
takes the strided share of every (padded) pass, as torch's DistributedSampler does, so N processes
with per-rank batch b see exactly the videos one process sees with batch N*b. Resuming at step k of
an epoch is a slice of the list.

Steps are positions in those lists, whatever decodes: a video that fails leaves its batch short, and a
batch whose videos all failed (which the loader drops) leaves its position empty (None) rather than
pulling the next batch forward. So step k pairs labeled batch k with unlabeled batch k, and "resume
at step k" means the same videos in a run that met broken files as in one that did not.

Each item's random draws (clip start, crop, flip, jitter) come from a torch seed of its own,
derived from (stream seed, the item's position in the global stream), never from a worker's running
RNG: the clips of a step do not depend on the number of workers, on which worker decodes them, or
on how many steps of the epoch ran before a resume.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils.data import Dataset

from edgekd.data.spec import DataSpec
from edgekd.distill.config import DistillConfig
from edgekd.distill.dist import DistEnv
from edgekd.errors import ConfigError, DataError

@dataclass
class RunData:
    manifest: Any  # the whole dataset (edgekd.data.manifest.Manifest)
    split: Any  # edgekd.data.splits.SemiSplit over the train videos
    labeled: Any  # Manifest of the labeled train videos
    unlabeled: Any  # Manifest of the unlabeled train videos (labels hidden)
    test: Any  # Manifest of the test videos
    spec: DataSpec


def data_spec(cfg: DistillConfig, manifest) -> DataSpec:
    """The student's input: config values where set, else the dataset's defaults."""
    from edgekd.data.manifest import default_data_spec

    d = cfg.data
    spec = default_data_spec(manifest, frames=d.frames, size=d.size, frame_stride=d.frame_stride)
    return dataclasses.replace(spec, mean=tuple(d.mean or spec.mean), std=tuple(d.std or spec.std))


def prepare_data(cfg: DistillConfig, reporter=None) -> RunData:
    """Load the dataset (None = the embedded synthetic one) and split its train videos; `reporter`
    hears once about each video skipped in this run (manifest.skipped, shared by every subset)."""
    from edgekd.data.manifest import load_dataset
    from edgekd.data.splits import SemiSplit, make_split

    d = cfg.data
    manifest = load_dataset(d.path, video_root=d.video_root, reporter=reporter)
    train, test = manifest.split("train"), manifest.split("test")
    where = d.path or "the synthetic dataset"
    if not len(train.entries) or not len(test.entries):
        raise DataError(f"{where}: needs train and test videos, found {len(train.entries)} train / "
                        f"{len(test.entries)} test", "use a dataset with both splits (or split files)")
    if d.split_file:
        split = SemiSplit.load(d.split_file)
    else:
        split = make_split(train, labeled_fraction=d.labeled if d.labeled_per_class is None else None,
                           labeled_per_class=d.labeled_per_class, seed=d.split_seed)
    labeled, unlabeled = split.apply(train)
    if not len(labeled.entries):
        raise DataError(f"{where}: the split leaves no labeled video (labeled={d.labeled}, "
                        f"labeled_per_class={d.labeled_per_class}, {len(train.entries)} train videos)",
                        "raise --labeled or use --set data.labeled_per_class=1")
    return RunData(manifest, split, labeled, unlabeled, test, data_spec(cfg, manifest))


def is_synthetic(manifest) -> bool:
    return (getattr(manifest, "meta", None) or {}).get("generator") == "edgekd.synthetic"


def augments(cfg: DistillConfig, manifest) -> bool:
    """data.augment, where None means on for real videos and off for the embedded synthetic set."""
    return cfg.data.augment if cfg.data.augment is not None else not is_synthetic(manifest)


def per_rank(global_batch: int, env: DistEnv, key: str) -> int:
    if global_batch % env.world_size:
        raise ConfigError(f"{key}={global_batch} is not divisible by the {env.world_size} processes",
                          f"use a multiple of {env.world_size} (batch sizes are global)")
    return global_batch // env.world_size


def steps_per_epoch(n_labeled: int, n_unlabeled: int, bl: int, bu: int, env: DistEnv) -> int:
    """Length of the longer pass (labeled or unlabeled) in steps of per-rank batches bl / bu."""
    per = lambda n: math.ceil(n / env.world_size)  # noqa: E731  (padded share of one rank)
    steps = math.ceil(per(n_labeled) / bl)
    if n_unlabeled:
        steps = max(steps, math.ceil(per(n_unlabeled) / bu))
    return steps


def epoch_indices(n: int, batch: int, steps: int, env: DistEnv, seed: int) -> tuple[list[int], list[int]]:
    """This rank's `steps * batch` video indices: shuffled passes, each padded and strided by rank;
    and each one's position in the global (all ranks) stream, which keys its random draws."""
    out: list[int] = []
    keys: list[int] = []
    p = offset = 0
    while len(out) < steps * batch:
        g = torch.Generator().manual_seed(seed + 7919 * p)
        perm = torch.randperm(n, generator=g).tolist()
        perm += perm[: (-n) % env.world_size]  # pad like DistributedSampler
        out += perm[env.rank::env.world_size]
        keys += range(offset + env.rank, offset + len(perm), env.world_size)
        offset += len(perm)
        p += 1
    return out[: steps * batch], keys[: steps * batch]


def derive_seed(*parts: int) -> int:
    """One 64-bit seed from integers (numpy's SeedSequence: nearby tuples give unrelated seeds)."""
    import numpy as np

    return int(np.random.SeedSequence([p % 2**64 for p in parts]).generate_state(1, np.uint64)[0])


class EpochItems(Dataset):
    """Item j of one epoch's stream: video `indices[j]`, its random draws seeded by (seed, keys[j]).

    The item's "index" is its position j in the stream (batches() turns it back into the video), so
    a batch says which step it belongs to even after the loader dropped a batch of failed videos.
    fork_rng keeps the process's own RNG untouched, so loading with or without workers is the same.
    """

    def __init__(self, dataset, indices: list[int], keys: list[int], seed: int):
        self.dataset, self.indices, self.keys, self.seed = dataset, indices, keys, seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> dict:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, self.keys[j]))
            return {**self.dataset[self.indices[j]], "index": j}

    def batches(self, loader, batch: int) -> Iterator[tuple[int, dict]]:
        """(step, batch) for each batch of `loader` over these items, "index" back to video indices."""
        for b in loader:
            positions = b["index"].tolist()
            b["index"] = torch.tensor([self.indices[j] for j in positions], dtype=torch.long)
            yield positions[0] // batch, b


class Streams:
    """Builds the datasets once and, per epoch, the labeled / unlabeled batch iterators."""

    def __init__(self, cfg: DistillConfig, data: RunData, env: DistEnv, clips_per_video: int,
                 fixed_starts: bool = False):
        from edgekd.data.dataset import ClipDataset

        d, t = cfg.data, cfg.train
        # fixed_starts: clips at the uniformly spaced starts a teacher cache was built on
        kw = dict(mode="train" if augments(cfg, data.manifest) else "eval", clips_per_video=clips_per_video,
                  backend=d.backend,
                  sampling="uniform" if fixed_starts else None)
        self.cfg, self.env = cfg, env
        self.labeled = ClipDataset(data.labeled, data.spec, **kw)
        self.unlabeled = ClipDataset(data.unlabeled, data.spec, **kw) if len(data.unlabeled.entries) else None
        self.bl = per_rank(t.batch_size, env, "train.batch_size")
        self.bu = per_rank(t.unlabeled_batch_size, env, "train.unlabeled_batch_size")
        self.steps = steps_per_epoch(len(self.labeled), len(self.unlabeled or []), self.bl, self.bu, env)

    def _stream(self, dataset, batch: int, epoch: int, which: int, skip: int) -> Iterator[tuple[int, dict]]:
        """(step, batch) from step `skip` on; steps whose videos all failed are missing."""
        from edgekd.data.dataset import make_loader

        seed = self.cfg.train.seed * 1_000_003 + epoch * 2 + which  # one seed per (run, epoch, stream)
        items = EpochItems(dataset, *epoch_indices(len(dataset), batch, self.steps, self.env, seed), seed)
        if skip * batch >= len(items):
            return iter(())
        loader = make_loader(items, batch, shuffle=False, num_workers=self.cfg.data.workers,
                             sampler=range(skip * batch, len(items)), seed=seed)
        return items.batches(loader, batch)

    def epoch(self, epoch: int, use_unlabeled: bool, skip: int = 0) -> Iterator[tuple[int, dict | None, dict | None]]:
        """(step, labeled batch, unlabeled batch) for every step of `epoch` from `skip` on; a batch is
        None where all its videos failed to decode (the unlabeled one also where it is not used)."""
        use = use_unlabeled and self.unlabeled is not None
        streams = [self._stream(self.labeled, self.bl, epoch, 0, skip)]
        streams += [self._stream(self.unlabeled, self.bu, epoch, 1, skip)] if use else []
        pending = [next(s, None) for s in streams]  # each stream's next (step, batch)
        for step in range(skip, self.steps):
            out: list[dict | None] = [None, None]
            for i, s in enumerate(streams):
                if pending[i] is not None and pending[i][0] == step:
                    out[i], pending[i] = pending[i][1], next(s, None)
            yield step, out[0], out[1]


def eval_loader(cfg: DistillConfig, manifest, spec: DataSpec, mode: str = "eval",
                views: tuple[int, int] | None = None, batch_size: int | None = None, workers: int | None = None):
    from edgekd.data.dataset import ClipDataset, make_loader

    kwargs = {"num_views": views} if views else {}
    ds = ClipDataset(manifest, spec, mode=mode, backend=cfg.data.backend, **kwargs)
    return make_loader(ds, batch_size or cfg.train.eval_batch_size, shuffle=False,
                       num_workers=cfg.data.workers if workers is None else workers)
