"""UCF101- and HMDB51-format datasets laid out as the real downloads unpack, for tests at any size.

    from datasets import make_ucf101, make_hmdb51, bad_videos

- `make_ucf101(root, classes=UCF_CLASSES, per_class=3, ...) -> ROOT/ucfTrainTestlist`:
  `ROOT/<video_dir>/<Class>/v_<Class>_gGG_cCC.avi` (MPEG-4 part 2 AVI, 320x240 by default) and
  `ucfTrainTestlist/` with classInd.txt, trainlist01-03.txt and testlist01-03.txt (CRLF lines, as
  shipped). Group g01 of each class is the test split, the rest train.
- `make_hmdb51(root, classes=HMDB_CLASSES, per_class=4, ..., video_dir="hmdb51") ->
  ROOT/testTrainMulti_7030_splits`: `ROOT/<video_dir>/<class>/<name>.avi` and
  `<class>_test_split1-3.txt` with lines "<name>.avi M " (M: 0 unused, 1 train, 2 test; the real
  files carry the trailing space). The default video folder is NOT the download's `hmdb51_org`.
- `bad=True` (the default) adds three broken files to the first class, listed as training videos:
  an empty (0-byte) file, a truncated video and a text file with a video name. `bad_videos(split_dir)`
  returns their paths as {"empty": ..., "truncated": ..., "not a video": ...}.

Every good video is a distinct real clip (`moving_square` with its own seed); frames and size shrink
for speed where the 320x240 format is not the point.
"""

from __future__ import annotations

from pathlib import Path

from videos import moving_square, write_video

UCF_CLASSES = ("ApplyEyeMakeup", "Archery", "BabyCrawling")
HMDB_CLASSES = ("brush_hair", "cartwheel", "climb_stairs")
HMDB_MARKERS = (1, 1, 2, 0)  # cycled over each class's videos: train, train, test, unused
_BAD_FILE = ".bad_videos.tsv"  # in ROOT (hidden, so no loader reads it): "<kind>\t<path>" per broken file


def _video(path: Path, frames: int, size: tuple[int, int], seed: int) -> None:
    write_video(path, moving_square(frames, size[0], size[1], seed=seed), fps=25)


def _add_bad(folder: Path, names: dict[str, str], good: Path, split_dir: Path) -> list[str]:
    """Write the broken files `names` (kind -> file name) into `folder`; return their names."""
    paths = {kind: folder / name for kind, name in names.items()}
    paths["empty"].write_bytes(b"")
    data = good.read_bytes()
    cut = data.find(b"00dc", data.find(b"movi"))  # AVI: the first frame's chunk
    paths["truncated"].write_bytes(data[: data.find(b"00dc", cut + 4)])  # headers and one frame, no more
    paths["not a video"].write_text("404 Not Found\n")
    (split_dir.parent / _BAD_FILE).write_text("".join(f"{k}\t{p}\n" for k, p in paths.items()))
    return list(names.values())


def bad_videos(split_dir: Path) -> dict[str, Path]:
    """kind ("empty", "truncated", "not a video") -> path of the broken files a dataset holds."""
    f = Path(split_dir).parent / _BAD_FILE
    if not f.is_file():
        return {}
    return {k: Path(p) for k, p in (line.split("\t") for line in f.read_text().splitlines())}


def make_ucf101(root: str | Path, classes=UCF_CLASSES, per_class: int = 3, frames: int = 24,
                size: tuple[int, int] = (240, 320), video_dir: str = "UCF-101", bad: bool = True) -> Path:
    """A UCF101-format dataset under `root`; returns its split folder (ROOT/ucfTrainTestlist)."""
    root = Path(root)
    split_dir = root / "ucfTrainTestlist"
    split_dir.mkdir(parents=True)
    train, test = [], []
    for ci, c in enumerate(classes, 1):
        for k in range(per_class):
            rel = f"{c}/v_{c}_g{k + 1:02d}_c01.avi"
            _video(root / video_dir / rel, frames, size, seed=100 * ci + k)
            if k == 0:
                test.append(rel)
            else:
                train.append(f"{rel} {ci}")
        if bad and ci == 1:
            names = {kind: f"v_{c}_g99_c{j:02d}.avi" for j, kind in enumerate(("empty", "truncated", "not a video"), 1)}
            good = root / video_dir / c / f"v_{c}_g01_c01.avi"
            train += [f"{c}/{n} {ci}" for n in _add_bad(root / video_dir / c, names, good, split_dir)]
    crlf = lambda lines: "".join(f"{x}\r\n" for x in lines).encode()  # noqa: E731
    (split_dir / "classInd.txt").write_bytes(crlf(f"{i} {c}" for i, c in enumerate(classes, 1)))
    for n in (1, 2, 3):
        (split_dir / f"trainlist{n:02d}.txt").write_bytes(crlf(train))
        (split_dir / f"testlist{n:02d}.txt").write_bytes(crlf(test))
    return split_dir


def make_hmdb51(root: str | Path, classes=HMDB_CLASSES, per_class: int = 4, frames: int = 24,
                size: tuple[int, int] = (240, 320), video_dir: str = "hmdb51", bad: bool = True) -> Path:
    """An HMDB51-format dataset under `root`; returns its split folder (ROOT/testTrainMulti_7030_splits)."""
    root = Path(root)
    split_dir = root / "testTrainMulti_7030_splits"
    split_dir.mkdir(parents=True)
    for ci, c in enumerate(classes):
        lines = []
        for k in range(per_class):
            name = f"Video_{k}_{c}_f_cm_np1_fr_med_{k}.avi"
            _video(root / video_dir / c / name, frames, size, seed=1000 + 100 * ci + k)
            lines.append(f"{name} {HMDB_MARKERS[k % len(HMDB_MARKERS)]} ")
        if bad and ci == 0:
            names = {kind: f"broken_{j}_{c}_f_cm_np1_fr_med_0.avi"
                     for j, kind in enumerate(("empty", "truncated", "not a video"))}
            good = root / video_dir / c / f"Video_0_{c}_f_cm_np1_fr_med_0.avi"
            lines += [f"{n} 1 " for n in _add_bad(root / video_dir / c, names, good, split_dir)]
        for n in (1, 2, 3):
            (split_dir / f"{c}_test_split{n}.txt").write_text("\n".join(lines) + "\n")
    return split_dir
