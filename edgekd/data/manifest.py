"""One manifest model for every dataset layout edgekd reads.

A `Manifest` is a root folder, the class names and one `VideoEntry` per video (absolute path,
label index or None, split "train"/"test", optional caption, stable `video_id`). It is fed by our own
`manifest.json` (written by `Manifest.save`, `edgekd data synth`; carries captions and dataset-level
defaults such as whether horizontal flip is allowed) and by the readers of `edgekd.data.layouts`
(folder-per-class, UCF101 and HMDB51 split files, CSV, Kinetics CSV); `load_dataset` picks one for a path.

Videos that cannot be used (absent, empty; later, those that fail to decode) go into the manifest's
`SkippedVideos` record, shared by all its subsets: each is reported once, in one warning line, and
never decoded again in the run.

Split names are normalized to "train" and "test" ("val", "validate", "validation" count as "test").

This module is pure Python (no torch, no decoders) so the CLI can import it instantly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from edgekd.errors import DataError
from edgekd.io import read_json

if TYPE_CHECKING:
    from edgekd.report import Reporter

MANIFEST_FORMAT = "edgekd-manifest"
MANIFEST_VERSION = 1
SPLITS = ("train", "test")
SPLIT_ALIASES = {"train": "train", "training": "train", "test": "test", "testing": "test",
                 "val": "test", "valid": "test", "validate": "test", "validation": "test"}
SKIPPED_FILE = "skipped_videos.txt"  # written into a run folder: one "path<TAB>reason" per line


class SkippedVideos:
    """The run's record of videos that cannot be used, and why.

    Every subset of a manifest shares its record, so one run keeps one list whatever set (labeled,
    unlabeled, test, teacher building) found a bad video. Each video is reported once: the videos
    added in one call make ONE warning line through the reporter. A DataLoader worker works on a
    copy (without the reporter); its failures travel back in the batch and the main process adds
    them here (edgekd.data.dataset.ClipLoader).
    """

    def __init__(self, items: Iterable[tuple[str, str]] = ()):
        self.reasons: dict[str, str] = {}
        self.reporter: Reporter | None = None
        self.add(items)

    def __contains__(self, path: object) -> bool:
        return str(path) in self.reasons

    def __len__(self) -> int:
        return len(self.reasons)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self.reasons.items()))

    def __getstate__(self) -> dict[str, Any]:
        return {"reasons": dict(self.reasons), "reporter": None}  # consoles stay in the main process

    def add(self, items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Record (path, reason) pairs; warn once about the ones not seen before and return them."""
        new = {str(p): r for p, r in items if str(p) not in self.reasons}
        self.reasons.update(new)
        self._warn(list(new.items()))
        return list(new.items())

    def report_to(self, reporter: Reporter | None) -> None:
        """Warn (one line) about what was recorded so far; from now on, warn about each new find."""
        self.reporter = reporter
        self._warn(list(self.reasons.items()))

    def write(self, folder: str | Path) -> Path | None:
        """`folder/skipped_videos.txt` listing every skipped video with its reason (None if none)."""
        if not self.reasons:
            return None
        from edgekd.io import write_text_atomic

        path = Path(folder) / SKIPPED_FILE
        write_text_atomic(path, "".join(f"{p}\t{r}\n" for p, r in self.reasons.items()))
        return path

    def _warn(self, items: list[tuple[str, str]], limit: int = 5) -> None:
        if not items or self.reporter is None:
            return
        shown = "; ".join(f"{p}: {r}" for p, r in items[:limit])
        more = f"; ... (+{len(items) - limit} more)" if len(items) > limit else ""
        self.reporter.warn(f"skipping {len(items)} video(s) that cannot be used: {shown}{more}")


@dataclasses.dataclass(frozen=True)
class VideoEntry:
    path: Path              # absolute path of the video file
    label: int | None       # index into Manifest.class_names; None = unlabeled
    split: str              # "train" or "test"
    caption: str | None = None
    video_id: str = ""      # stable id used by split files; defaults to the file name

    def __post_init__(self) -> None:
        if not self.video_id:
            object.__setattr__(self, "video_id", Path(self.path).name)


@dataclasses.dataclass
class Manifest:
    root: Path
    class_names: list[str]
    entries: list[VideoEntry]
    # Dataset-level defaults read by default_data_spec() and the transforms, e.g.
    # {"hflip": False, "frames": 8, "size": 64, "frame_stride": 2, "short_side_ratio": 1.0}.
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""        # the file or folder it was read from, for messages
    # Free-form facts about the dataset, e.g. the synthetic generator's parameters and
    # "class_descriptions" (class name -> a sentence, for vision-language prompts).
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Videos that cannot be used, found while loading or decoding; shared by subsets, not saved.
    skipped: SkippedVideos = dataclasses.field(default_factory=SkippedVideos)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> "Manifest":
        """The entries of one split ("train" or "test"), same classes and defaults."""
        name = SPLIT_ALIASES.get(name, name)
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}", "use 'train' or 'test'")
        return self.subset([e for e in self.entries if e.split == name])

    def subset(self, entries: Iterable[VideoEntry]) -> "Manifest":
        return dataclasses.replace(self, entries=list(entries), defaults=dict(self.defaults))

    def by_id(self) -> dict[str, VideoEntry]:
        return {e.video_id: e for e in self.entries}

    def counts(self) -> dict[tuple[str, str], int]:
        """(class name or "(unlabeled)", split) -> number of videos."""
        return Counter((self.class_names[e.label] if e.label is not None else "(unlabeled)", e.split)
                       for e in self.entries)

    def fingerprint(self) -> str:
        """Short hash of classes, ids, labels, splits and meta (e.g. the synthetic generator's version
        and seed): keys caches built from this dataset."""
        h = hashlib.sha256(json.dumps([self.class_names, self.meta], sort_keys=True, default=str).encode())
        for e in sorted(self.entries, key=lambda e: e.video_id):
            h.update(f"\n{e.video_id}\t{e.label}\t{e.split}".encode())
        return h.hexdigest()[:16]

    def drop_missing(self) -> "Manifest":
        """Record and drop entries whose file is absent or empty; fail if nothing is left."""
        bad = [e for e in self.entries if not e.path.is_file() or e.path.stat().st_size == 0]
        if not bad:
            return self
        self.skipped.add((str(e.path), "does not exist" if not e.path.is_file() else "empty (0 bytes)") for e in bad)
        bad_ids = {id(e) for e in bad}
        kept = [e for e in self.entries if id(e) not in bad_ids]
        if not kept:
            raise DataError(f"{self.source}: none of its {len(self.entries)} videos is a readable file",
                            "check that the videos were extracted next to the index file")
        return self.subset(kept)

    # -- our own manifest.json -------------------------------------------------------------------

    def to_json(self, base: Path) -> dict[str, Any]:
        def rel(p: Path) -> str:
            try:
                return p.resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                return str(p.resolve())

        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "class_names": list(self.class_names),
            "defaults": dict(self.defaults),
            "meta": dict(self.meta),
            "videos": [
                {"id": e.video_id, "path": rel(e.path),
                 "label": None if e.label is None else self.class_names[e.label],
                 "split": e.split, "caption": e.caption}
                for e in self.entries
            ],
        }

    def save(self, path: str | Path) -> Path:
        """Write manifest.json atomically; video paths are stored relative to its folder."""
        from edgekd.io import write_json

        path = Path(path)
        write_json(path, self.to_json(path.parent))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        path = Path(path)
        if path.is_dir():
            path = path / "manifest.json"
        if not path.is_file():
            raise DataError(f"no manifest at {path}", "pass a manifest.json written by edgekd")
        data = read_json(path, DataError, "fix or regenerate the manifest")
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise DataError(f"{path} is not an edgekd manifest (no \"format\": \"{MANIFEST_FORMAT}\")",
                            "write one with `edgekd data synth` or Manifest.save()")
        names = [str(c) for c in data.get("class_names", [])]
        index = {c: i for i, c in enumerate(names)}
        entries = []
        for i, v in enumerate(data.get("videos", [])):
            where = f"{path}: videos[{i}]"
            if not isinstance(v, dict) or "path" not in v:
                raise DataError(f"{where} has no \"path\"", "every video needs a path")
            label = v.get("label")
            if label is not None:
                if isinstance(label, int) and 0 <= label < len(names):
                    pass
                elif label in index:
                    label = index[label]
                else:
                    raise DataError(f"{where}: label {label!r} is not in class_names",
                                    "add the class to class_names or fix the label")
            vpath = Path(v["path"])
            vpath = vpath if vpath.is_absolute() else path.parent / vpath
            entries.append(VideoEntry(vpath, label, normalize_split(v.get("split", "train"), where),
                                      v.get("caption"), str(v.get("id") or v["path"])))
        m = cls(path.parent, names, entries, dict(data.get("defaults", {})), str(path), dict(data.get("meta", {})))
        return m.drop_missing()


def normalize_split(value: str, where: str) -> str:
    """"train" or "test" for any spelling of a split (val, validation, ...); `where` names the source."""
    s = SPLIT_ALIASES.get(str(value).strip().lower())
    if s is None:
        raise DataError(f"{where}: unknown split {value!r}", "use train, test (or val/validate)")
    return s


def load_dataset(path: str | Path | None = None, *, split: int = 1, video_root: str | Path | None = None,
                 reporter: Reporter | None = None) -> Manifest:
    """Read any supported dataset layout into a Manifest (see the module docstring).

    `path=None` means the embedded synthetic dataset (generated on first use, then cached).
    `split` picks the UCF101/HMDB51 split number; `video_root` is where the videos of split files
    (or the paths of a CSV) are looked up. `reporter` gets one warning line listing the videos skipped
    while loading, and later one per batch of newly found unreadable videos (SkippedVideos).
    """
    vroot = Path(video_root).expanduser().absolute() if video_root else None
    manifest = _read_dataset(path, split, vroot, reporter)
    manifest.skipped.report_to(reporter)
    return manifest


def _read_dataset(path: str | Path | None, split: int, vroot: Path | None, reporter: Reporter | None) -> Manifest:
    from edgekd.data import layouts  # its readers build Manifests: imported here, not at the top

    if path is None:
        from edgekd.data.synthetic import default_dataset

        return Manifest.load(default_dataset(reporter))
    path = Path(path).expanduser().absolute()  # entries carry absolute paths: messages copyable anywhere
    if not path.exists():
        raise DataError(f"{path} does not exist",
                        "pass a dataset folder, split file, CSV or manifest.json (or nothing for the synthetic default)")
    if path.is_file():
        name = path.name
        if path.suffix.lower() == ".json":
            return Manifest.load(path)
        if path.suffix.lower() == ".csv":
            return layouts.load_csv(path, vroot)
        if name == "classInd.txt" or re.match(r"^(train|test)list\d+\.txt$", name):
            m = re.search(r"(\d+)\.txt$", name)
            return layouts.load_ucf101(path.parent, int(m[1]) if m else split, vroot)
        if (m := layouts.HMDB_SPLIT_FILE.match(name)):
            return layouts.load_hmdb51(path.parent, int(m["n"]), vroot)
        if path.suffix.lower() in layouts.VIDEO_EXTS:
            raise DataError(f"{path} is a single video, not a dataset",
                            "pass the folder that holds the class subfolders")
        raise DataError(f"{path}: unknown dataset file type",
                        "use manifest.json, a .csv, classInd.txt/trainlistNN.txt or <class>_test_splitN.txt")
    if (path / "manifest.json").is_file():
        return Manifest.load(path / "manifest.json")
    if not any(path.iterdir()):
        raise DataError(f"{path} is an empty folder", "put videos in ROOT/<class>/<video> or point at another folder")
    found = layouts.split_file_dir(path)
    if found:
        kind, d = found
        loader = layouts.load_ucf101 if kind == "ucf101" else layouts.load_hmdb51
        return loader(d, split, vroot)
    csvs = sorted(path.glob("*.csv"))
    if len(csvs) == 1 and not any(p.is_dir() for p in path.iterdir()):
        return layouts.load_csv(csvs[0], vroot)
    return layouts.load_folder(path)


def default_data_spec(manifest: Manifest, *, frames: int | None = None, size: int | None = None,
                      frame_stride: int | None = None):
    """The DataSpec a model for this manifest uses unless told otherwise.

    Manifest defaults win over the generic video defaults (16 frames x 112 px, stride 2); the
    synthetic dataset stores its own (8 frames x 64 px, a clip spanning about half the video).
    """
    from edgekd.data.spec import KINETICS_MEAN, KINETICS_STD, DataSpec

    d = manifest.defaults
    return DataSpec(
        frames=int(frames or d.get("frames", 16)),
        size=int(size or d.get("size", 112)),
        class_names=tuple(manifest.class_names),
        mean=tuple(d.get("mean", KINETICS_MEAN)),
        std=tuple(d.get("std", KINETICS_STD)),
        frame_stride=int(frame_stride or d.get("frame_stride", 2)),
    )
