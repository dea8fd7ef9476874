"""The dataset layouts edgekd reads, one reader per layout; each returns a `Manifest`.

- a folder-per-class tree: `ROOT/<class>/<video>` or `ROOT/{train,test}/<class>/<video>` (`load_folder`);
- UCF101 split files: `classInd.txt` ("1 ApplyEyeMakeup", 1-based), `trainlistNN.txt`
  ("ApplyEyeMakeup/v_x.avi 1") and `testlistNN.txt` ("ApplyEyeMakeup/v_x.avi") (`load_ucf101`);
- HMDB51 split files: `<class>_test_splitN.txt` with lines "video.avi M", M = 0 unused, 1 train, 2 test;
  videos live under `ROOT/<class>/<video>` (`load_hmdb51`);
- a CSV `path,label[,split]` (header optional; paths relative to the CSV's folder) (`load_csv`);
- a Kinetics-style CSV `label,youtube_id,time_start,time_end,split` naming files
  `<youtube_id>_<start:06d>_<end:06d>.<ext>` found under `ROOT/<split>/<label>/`, `ROOT/<label>/`,
  `ROOT/<split>/` or `ROOT/` (label folders may use spaces or underscores); `load_csv` detects it by its
  header. Kinetics rows whose file is missing are routine (videos vanish from YouTube): they are skipped
  like unreadable videos.

UCF101/HMDB51 split folders find their videos in the folder beside them (or one level down) that
holds most of the class folders the split files name, whatever the download was unpacked as
(`UCF-101/`, `UCF101/`, `hmdb51_org/`, `videos/`); `video_root` (`--video-root`) says it outright.

Layouts without a split get a deterministic per-class 80/20 train/test split by hashed video id.
`edgekd.data.manifest.load_dataset` picks the reader for a path. Pure Python, like the manifest.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import re
from pathlib import Path

from edgekd.data.manifest import SPLIT_ALIASES, Manifest, SkippedVideos, VideoEntry, normalize_split
from edgekd.errors import DataError

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
AUTO_TEST_FRACTION = 0.2  # for layouts that carry no split


# -- shared by the readers ----------------------------------------------------------------------------

def _is_video(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in VIDEO_EXTS and not p.name.startswith(".")


def _stable_unit(text: str) -> float:
    """A number in [0, 1) fixed by `text`: deterministic across runs and machines."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16 ** 12


def _auto_split(entries: list[VideoEntry], fraction: float = AUTO_TEST_FRACTION) -> list[VideoEntry]:
    """Per class, the `fraction` of videos with the smallest hashed ids go to test (classes of >= 2)."""
    by_class: dict[int | None, list[VideoEntry]] = {}
    for e in entries:
        by_class.setdefault(e.label, []).append(e)
    test: set[str] = set()
    for group in by_class.values():
        k = round(fraction * len(group)) if len(group) >= 2 else 0
        k = max(1, k) if len(group) >= 2 else 0
        test.update(e.video_id for e in sorted(group, key=lambda e: _stable_unit(e.video_id))[:k])
    return [dataclasses.replace(e, split="test" if e.video_id in test else "train") for e in entries]


# -- folder-per-class -------------------------------------------------------------------------------

def load_folder(root: Path) -> Manifest:
    """`ROOT/<class>/<video>` (auto 80/20 split) or `ROOT/{train,test}/<class>/<video>`."""
    split_dirs = {s: root / d for d in sorted(p.name for p in root.iterdir() if p.is_dir())
                  if (s := SPLIT_ALIASES.get(d.lower()))}
    if split_dirs:
        trees = [(split, d) for split, d in split_dirs.items()]
    else:
        trees = [(None, root)]
    found: list[tuple[str, Path, str | None]] = []  # (class, path, split)
    for split, base in trees:
        for class_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for v in sorted(class_dir.rglob("*")):
                if _is_video(v):
                    found.append((class_dir.name, v, split))
    if not found:
        loose = sorted(v.name for v in root.iterdir() if _is_video(v))
        hint = ("put each class's videos in its own subfolder (ROOT/<class>/<video>)" if loose else
                f"expected ROOT/<class>/<video> with one of {', '.join(VIDEO_EXTS)}, or a manifest.json, "
                "UCF101/HMDB51 split files or a CSV")
        raise DataError(f"{root}: no videos found" + (f" in class subfolders ({len(loose)} loose files)" if loose else ""),
                        hint)
    names = sorted({c for c, _, _ in found})
    index = {c: i for i, c in enumerate(names)}
    entries = [VideoEntry(p, index[c], s or "train", None, p.relative_to(root).as_posix()) for c, p, s in found]
    if not split_dirs:
        entries = _auto_split(entries)
    return Manifest(root, names, entries, {}, str(root)).drop_missing()


# -- UCF101 -----------------------------------------------------------------------------------------

def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of every non-empty line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}", "check the file's permissions") from e
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(Path(d.path) for d in os.scandir(folder) if d.is_dir() and not d.name.startswith("."))
    except OSError:
        return []


def find_video_root(split_dir: Path, class_names: list[str]) -> Path | None:
    """The folder holding most of the class folders the split files name: among split_dir, its
    parent, their subfolders and those subfolders' subfolders (UCF-101/, UCF101/UCF-101/,
    hmdb51_org/, videos/, ...). None when no folder holds any of them."""
    wanted = set(class_names)
    near = [split_dir, split_dir.parent] + _subdirs(split_dir) + [d for d in _subdirs(split_dir.parent)
                                                                  if d != split_dir]
    candidates = near + [d for folder in near[2:] for d in _subdirs(folder)]
    score = {c: sum(d.name in wanted for d in _subdirs(c)) for c in dict.fromkeys(candidates)}
    best = max(score, key=score.get)  # the first of equals: nearer folders come first
    return best if score[best] else None


def load_ucf101(split_dir: Path, split: int = 1, video_root: Path | None = None) -> Manifest:
    """UCF101: `classInd.txt`, `trainlist0N.txt`, `testlist0N.txt` in `split_dir`.

    Videos are `<video_root>/<Class>/<video>.avi`; video_root=None finds it (`find_video_root`).
    """
    class_file = split_dir / "classInd.txt"
    names_by_id: dict[int, str] = {}
    for n, line in _read_lines(class_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{class_file}:{n}: expected '<index> <ClassName>', got {line!r}",
                            "classInd.txt lines look like '1 ApplyEyeMakeup'")
        names_by_id[int(parts[0])] = parts[1]
    if not names_by_id:
        raise DataError(f"{class_file} lists no classes", "classInd.txt lines look like '1 ApplyEyeMakeup'")
    ids = sorted(names_by_id)
    if ids != list(range(1, len(ids) + 1)):
        raise DataError(f"{class_file}: class indices are not 1..{len(ids)}", "UCF101 numbers classes from 1")
    names = [names_by_id[i] for i in ids]
    index = {c: i for i, c in enumerate(names)}

    lists = {"train": split_dir / f"trainlist{split:02d}.txt", "test": split_dir / f"testlist{split:02d}.txt"}
    for f in lists.values():
        if not f.is_file():
            raise DataError(f"{f} does not exist", f"UCF101 split {split} needs trainlist{split:02d}.txt and "
                                                   f"testlist{split:02d}.txt beside classInd.txt")
    rows: list[tuple[str, int | None, str, Path, int]] = []
    for split_name, f in lists.items():
        for n, line in _read_lines(f):
            parts = line.split()
            rel = parts[0]
            cls = rel.split("/")[0] if "/" in rel else None
            if cls is None or cls not in index:
                raise DataError(f"{f}:{n}: class {cls!r} of {rel!r} is not in {class_file.name}",
                                "lines look like 'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1'; "
                                "check the split file matches classInd.txt")
            label = index[cls]
            if len(parts) > 1:
                if not parts[1].isdigit() or int(parts[1]) - 1 != label:
                    raise DataError(f"{f}:{n}: label {parts[1]!r} does not match class {cls} "
                                    f"({label + 1} in {class_file.name})", "fix the label or classInd.txt")
            rows.append((rel, label, split_name, f, n))
    if not rows:
        raise DataError(f"{split_dir}: split {split} lists no videos", "check trainlist/testlist files")
    return _split_file_manifest(split_dir, names, rows, video_root, "UCF-101")


# -- HMDB51 -----------------------------------------------------------------------------------------

HMDB_SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<n>\d+)\.txt$")


def load_hmdb51(split_dir: Path, split: int = 1, video_root: Path | None = None) -> Manifest:
    """HMDB51: `<class>_test_split<N>.txt` files with lines '<video>.avi <0|1|2>'.

    0 = not used in this split, 1 = train, 2 = test. Videos are `<video_root>/<class>/<video>.avi`;
    video_root=None finds it (`find_video_root`).
    """
    files = sorted(f for f in split_dir.iterdir()
                   if (m := HMDB_SPLIT_FILE.match(f.name)) and int(m["n"]) == split)
    if not files:
        raise DataError(f"{split_dir}: no <class>_test_split{split}.txt files", "point at the HMDB51 split folder")
    names = sorted(HMDB_SPLIT_FILE.match(f.name)["cls"] for f in files)
    index = {c: i for i, c in enumerate(names)}
    rows: list[tuple[str, int, str, Path, int]] = []
    for f in files:
        cls = HMDB_SPLIT_FILE.match(f.name)["cls"]
        for n, line in _read_lines(f):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{f}:{n}: expected '<video>.avi <0|1|2>', got {line!r}",
                                "HMDB51 marks each video 0 (unused), 1 (train) or 2 (test)")
            if parts[1] != "0":
                rows.append((f"{cls}/{parts[0]}", index[cls], "train" if parts[1] == "1" else "test", f, n))
    if not rows:
        raise DataError(f"{split_dir}: split {split} marks no video as train or test", "check the 1/2 markers")
    return _split_file_manifest(split_dir, names, rows, video_root, "hmdb51_org")


def _split_file_manifest(split_dir: Path, names: list[str], rows: list[tuple[str, int, str, Path, int]],
                         video_root: Path | None, usual: str) -> Manifest:
    """Entries for (relative path, label, split, split file, line) rows under the video root; a listed
    video that is missing is an error naming the split file and line. `usual`: the download's name
    for the video folder, for hints."""
    hint = f"pass --video-root FOLDER, the folder that holds the class folders ({names[0]}/, {names[-1]}/, ...)"
    root = video_root or find_video_root(split_dir, names)
    if video_root is not None and not video_root.is_dir():
        raise DataError(f"--video-root {video_root} is not a folder", hint)
    if root is None:
        raise DataError(f"{split_dir}: no folder beside it holds the class folders its split files name",
                        f"extract the videos next to it (as {split_dir.parent / usual}/{names[0]}/...), or {hint}")
    entries = []
    for rel, label, split_name, f, n in rows:
        p = root / rel
        if not p.is_file():
            raise DataError(f"{f}:{n}: video {rel} does not exist under {root}", hint)
        entries.append(VideoEntry(p, label, split_name, None, rel))
    return Manifest(root, names, entries, {}, str(split_dir)).drop_missing()


# -- CSV ----------------------------------------------------------------------------------------------

KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


def load_csv(path: Path, video_root: Path | None = None) -> Manifest:
    """A CSV of `path,label[,split]` (header optional) or a Kinetics CSV (detected by its header)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [(n, r) for n, r in enumerate(csv.reader(f), 1) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {path} as CSV: {e}", "save it as UTF-8 comma-separated text") from e
    if not rows:
        raise DataError(f"{path} is empty", "write a header 'path,label,split' and one row per video")
    header = [c.strip().lower() for c in rows[0][1]]
    if "youtube_id" in header:
        return _load_kinetics(path, header, rows[1:], video_root)
    if header[:1] == ["path"]:
        if "label" not in header:
            raise DataError(f"{path}:1: header has no 'label' column", "the header must be 'path,label[,split]'")
        cols, body = header, rows[1:]
    else:
        cols, body = ["path", "label", "split"][:max(2, len(rows[0][1]))], rows
    base = video_root or path.parent
    raw: list[tuple[Path, str, str | None, str]] = []
    for n, r in body:
        r = [c.strip() for c in r]
        if len(r) < 2 or not r[0] or not r[1]:
            raise DataError(f"{path}:{n}: missing {'label' if len(r) >= 1 and r[0] else 'path'} column in {r!r}",
                            "every row needs 'path,label' (and optionally ',split')")
        rec = dict(zip(cols, r))
        p = Path(rec["path"])
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            raise DataError(f"{path}:{n}: video {rec['path']} does not exist", f"paths are relative to {base}")
        split = normalize_split(rec["split"], f"{path}:{n}") if rec.get("split") else None
        raw.append((p, rec["label"], split, rec["path"]))
    if not raw:
        raise DataError(f"{path} lists no videos", "add one row per video")
    names = sorted({lbl for _, lbl, _, _ in raw})
    index = {c: i for i, c in enumerate(names)}
    entries = [VideoEntry(p, index[lbl], s or "train", None, vid) for p, lbl, s, vid in raw]
    if any(s is None for _, _, s, _ in raw):
        auto = {e.video_id: e.split for e in _auto_split(entries)}
        entries = [e if s else dataclasses.replace(e, split=auto[e.video_id]) for e, (_, _, s, _) in zip(entries, raw)]
    return Manifest(base, names, entries, {}, str(path)).drop_missing()


def _load_kinetics(path: Path, header: list[str], body: list[tuple[int, list[str]]],
                   video_root: Path | None) -> Manifest:
    missing_cols = [c for c in KINETICS_COLUMNS if c not in header]
    if missing_cols:
        raise DataError(f"{path}:1: Kinetics header lacks column(s) {', '.join(missing_cols)}",
                        "the header must be 'label,youtube_id,time_start,time_end,split'")
    col = {c: header.index(c) for c in KINETICS_COLUMNS}
    root = video_root or path.parent
    raw, absent = [], []
    for n, r in body:
        if len(r) < len(header):
            raise DataError(f"{path}:{n}: expected {len(header)} columns, got {len(r)}",
                            "each row is 'label,youtube_id,time_start,time_end,split'")
        label, yid, split_raw = r[col["label"]].strip(), r[col["youtube_id"]].strip(), r[col["split"]].strip()
        try:
            start, end = int(float(r[col["time_start"]])), int(float(r[col["time_end"]]))
        except ValueError:
            raise DataError(f"{path}:{n}: time_start/time_end must be numbers",
                            "e.g. 'abseiling,0347ZoDXyP0,14,24,train'") from None
        split = normalize_split(split_raw, f"{path}:{n}")
        stem = f"{yid}_{start:06d}_{end:06d}"
        found = _find_kinetics_file(root, stem, label, split_raw)
        if found is None:
            absent.append(stem)
            continue
        raw.append((found, label, split, found.relative_to(root).as_posix() if found.is_relative_to(root) else stem))
    skipped = SkippedVideos((f"{path}: {stem}", "no video file found") for stem in absent)
    if not raw:
        raise DataError(f"{path}: none of its {len(body)} rows has a video file under {root}",
                        "files must be named <youtube_id>_<start:06d>_<end:06d>.mp4 under "
                        "ROOT/<split>/<label>/, ROOT/<label>/, ROOT/<split>/ or ROOT/")
    names = sorted({lbl for _, lbl, _, _ in raw})
    index = {c: i for i, c in enumerate(names)}
    entries = [VideoEntry(p, index[lbl], s, None, vid) for p, lbl, s, vid in raw]
    return Manifest(root, names, entries, {}, str(path), skipped=skipped).drop_missing()


def _find_kinetics_file(root: Path, stem: str, label: str, split: str) -> Path | None:
    labels = dict.fromkeys([label, label.replace(" ", "_")])
    folders = [root / split / lbl for lbl in labels] + [root / lbl for lbl in labels] + [root / split, root]
    for folder in folders:
        for ext in (".mp4", ".mkv", ".webm", ".avi"):
            if (p := folder / (stem + ext)).is_file():
                return p
    return None


# -- which layout a folder holds ----------------------------------------------------------------------

def split_file_dir(d: Path) -> tuple[str, Path] | None:
    """('ucf101'|'hmdb51', folder) when `d` or one of its subfolders holds split files."""
    for cand in [d] + sorted(p for p in d.iterdir() if p.is_dir()):
        if (cand / "classInd.txt").is_file():
            return "ucf101", cand
        if any(HMDB_SPLIT_FILE.match(f.name) for f in cand.iterdir() if f.is_file()):
            return "hmdb51", cand
    return None
