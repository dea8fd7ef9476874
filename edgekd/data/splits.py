"""Semi-supervised splits: which training videos keep their label (like the papers' 1/5/10 % lists).

The split is class-balanced and seeded: in every class, the videos whose sha256(seed:video_id) is
smallest are labeled, k = max(1, round(fraction * n_class)) of them (or `labeled_per_class`). The
choice depends only on (seed, video ids), never on file order or the machine, so it is identical
on every run, and every class keeps at least one labeled video.

Only "train" videos are split (test videos stay out of both lists). The file is plain text:

    # edgekd semi-supervised split
    # dataset 3f2a...  seed 0  labeled_fraction 0.05
    [labeled]
    ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi
    ...
    [unlabeled]
    ...
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from edgekd.data.manifest import Manifest
from edgekd.errors import ConfigError, DataError

HEADER = "# edgekd semi-supervised split"


def _rank(seed: int, video_id: str) -> str:
    return hashlib.sha256(f"{seed}:{video_id}".encode()).hexdigest()


@dataclasses.dataclass
class SemiSplit:
    labeled: list[str]       # video ids that keep their labels
    unlabeled: list[str]     # video ids used without labels
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)  # seed, fraction, dataset fingerprint
    source: str = ""         # the file it was loaded from, for messages

    def save(self, path: str | Path) -> Path:
        from edgekd.io import write_text_atomic

        meta = "  ".join(f"{k} {v}" for k, v in self.meta.items())
        lines = [HEADER, f"# {meta}" if meta else "#",
                 f"# {len(self.labeled)} labeled, {len(self.unlabeled)} unlabeled videos; one video id per line",
                 "[labeled]", *self.labeled, "", "[unlabeled]", *self.unlabeled]
        path = Path(path)
        write_text_atomic(path, "\n".join(lines) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SemiSplit":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"split file {path} does not exist", "write one with `edgekd data split`")
        sections: dict[str, list[str]] = {"labeled": [], "unlabeled": []}
        meta: dict[str, Any] = {}
        current = None
        for n, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
            line = raw.strip()
            if n == 2 and line.startswith("#"):  # "# key value  key value" written by save()
                words = line[1:].split()
                meta = dict(zip(words[::2], words[1::2]))
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = line[1:-1].strip().lower()
                if current not in sections:
                    raise DataError(f"{path}:{n}: unknown section {line}", "sections are [labeled] and [unlabeled]")
                continue
            if current is None:
                raise DataError(f"{path}:{n}: video id {line!r} before any [labeled]/[unlabeled] header",
                                "start the file with a [labeled] line")
            sections[current].append(line)
        both = set(sections["labeled"]) & set(sections["unlabeled"])
        if both:
            raise DataError(f"{path}: {len(both)} video(s) are both labeled and unlabeled, e.g. {sorted(both)[0]}",
                            "each video id belongs to one section")
        if not sections["labeled"]:
            raise DataError(f"{path} lists no labeled videos", "regenerate it with `edgekd data split`")
        return cls(sections["labeled"], sections["unlabeled"], meta, str(path))

    def apply(self, manifest: Manifest, hide_labels: bool = True) -> tuple[Manifest, Manifest]:
        """(labeled manifest, unlabeled manifest); unlabeled entries lose their label unless told."""
        by_id = manifest.by_id()
        missing = [v for v in self.labeled + self.unlabeled if v not in by_id]
        if missing:
            where = self.source or "the split"
            raise DataError(f"{where} names {len(missing)} video(s) not in the dataset, e.g. {missing[0]!r}",
                            "the split was made for another dataset; make a new one with `edgekd data split`")
        labeled = manifest.subset(by_id[v] for v in self.labeled)
        unlabeled = manifest.subset(dataclasses.replace(by_id[v], label=None) if hide_labels else by_id[v]
                                    for v in self.unlabeled)
        return labeled, unlabeled


def make_split(manifest: Manifest, labeled_fraction: float | None = None, labeled_per_class: int | None = None,
               seed: int = 0) -> SemiSplit:
    """Class-balanced seeded split of the manifest's training videos (all videos if it has no "train")."""
    if (labeled_fraction is None) == (labeled_per_class is None):
        raise ConfigError("give exactly one of labeled_fraction and labeled_per_class",
                          "e.g. --labeled-fraction 0.05 or --labeled-per-class 3")
    if labeled_fraction is not None and not 0 < labeled_fraction <= 1:
        raise ConfigError(f"labeled fraction must be in (0, 1], got {labeled_fraction}",
                          "0.05 means 5 % of each class's training videos keep their labels")
    if labeled_per_class is not None and labeled_per_class < 1:
        raise ConfigError(f"labeled per class must be >= 1, got {labeled_per_class}")
    pool = [e for e in manifest.entries if e.split == "train"] or list(manifest.entries)
    by_class: dict[int | None, list[str]] = {}
    for e in pool:
        by_class.setdefault(e.label, []).append(e.video_id)
    labeled: set[str] = set()
    for label, ids in by_class.items():
        if label is None:
            continue  # videos without a label can only be unlabeled
        ids = sorted(ids, key=lambda v: _rank(seed, v))
        k = labeled_per_class if labeled_per_class is not None else round(labeled_fraction * len(ids))
        labeled.update(ids[:max(1, min(k, len(ids)))])
    if not labeled:
        raise DataError(f"{manifest.source or 'dataset'} has no labeled training videos to split",
                        "the dataset needs class labels")
    order = [e.video_id for e in pool]  # keep manifest order inside each list: easy to read and diff
    meta = {"dataset": manifest.fingerprint(), "seed": seed}
    meta.update({"labeled_fraction": labeled_fraction} if labeled_fraction is not None
                else {"labeled_per_class": labeled_per_class})
    return SemiSplit([v for v in order if v in labeled], [v for v in order if v not in labeled], meta)
