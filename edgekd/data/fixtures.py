"""Write datasets in the layouts the real UCF101 and HMDB51 downloads unpack to, with broken files.

For tests, benchmarks and trying edgekd without the downloads; `edgekd.data.layouts` reads them.
Each class's videos show one of the synthetic dataset's motions (class k moves like synthetic class
k mod 12, so the labels are learnable), drawn as MPEG-4 part 2 AVI, 320x240 at 25 fps by default, as
both datasets ship.

- `make_ucf101(root, ...) -> ROOT/ucfTrainTestlist`: videos `ROOT/<video_dir>/<Class>/v_<Class>_gGG_c01.avi`;
  classInd.txt, trainlist01-03.txt, testlist01-03.txt with CRLF line ends, as shipped. Split N tests
  group gN of each class (cycling when a class has fewer groups), the others train: as in the real
  splits, each one holds out other groups.
- `make_hmdb51(root, ...) -> ROOT/testTrainMulti_7030_splits`: videos `ROOT/<video_dir>/<class>/<name>.avi`;
  `<class>_test_split1-3.txt` lines "<name>.avi M " (M: 0 unused, 1 train, 2 test; the shipped files
  carry the trailing space). Split 1 marks a class's videos 1 1 2 0 1 1 2 0 ..., split N shifts that by
  N - 1 places, so each split tests other videos, as in the real splits. The default folder is `hmdb51`,
  not the download's `hmdb51_org`.
- `bad=True` adds to the first class three broken files listed as training videos: an empty file,
  a truncated video (headers and one frame) and a text file with a video's name. `bad_videos(split_dir)`
  gives their paths by kind ("empty", "truncated", "not a video").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

UCF_CLASSES = ("ApplyEyeMakeup", "Archery", "BabyCrawling")
HMDB_CLASSES = ("brush_hair", "cartwheel", "climb_stairs")
HMDB_MARKERS = (1, 1, 2, 0)  # cycled over each class's videos in split 1: train, train, test, unused
SPLITS = (1, 2, 3)
BAD_KINDS = ("empty", "truncated", "not a video")
_BAD_LIST = ".bad_videos.tsv"  # in ROOT, hidden from every loader: "<kind>\t<path under ROOT>" per broken file


def write_avi(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """uint8 (T, H, W, 3) -> MPEG-4 part 2 in AVI (yuv420p), the codec of UCF101 and HMDB51."""
    from edgekd.data.encode import write_video

    return write_video(path, frames, fps, "mpeg4", bit_rate=2_000_000)


def action_frames(class_index: int, seed: int, frames: int, size: tuple[int, int]) -> np.ndarray:
    """(frames, H, W, 3) uint8 of synthetic motion class `class_index` mod 12, centred in H x W."""
    from edgekd.data.synthetic import CLASSES, motion, random_look, render

    h, w = size
    rng = np.random.default_rng([seed, class_index])
    name = list(CLASSES)[class_index % len(CLASSES)]
    square = render(motion(name, frames, rng), random_look(rng), min(h, w), rng)
    pad_h, pad_w = (h - square.shape[1]) // 2, (w - square.shape[2]) // 2
    return np.pad(square, ((0, 0), (pad_h, h - square.shape[1] - pad_h), (pad_w, w - square.shape[2] - pad_w),
                           (0, 0)), mode="edge")


def _write_bad(folder: Path, names: list[str], good: Path, root: Path) -> None:
    paths = dict(zip(BAD_KINDS, (folder / n for n in names)))
    paths["empty"].write_bytes(b"")
    data = good.read_bytes()
    first = data.find(b"00dc", data.find(b"movi"))  # the first frame's chunk
    paths["truncated"].write_bytes(data[: data.find(b"00dc", first + 4)])
    paths["not a video"].write_text("404 Not Found\n")
    # relative to ROOT: the same bytes wherever the dataset is written, and it may be moved
    (root / _BAD_LIST).write_text("".join(f"{k}\t{p.relative_to(root).as_posix()}\n" for k, p in paths.items()))


def bad_videos(split_dir: str | Path) -> dict[str, Path]:
    """kind -> path of the broken files make_ucf101/make_hmdb51 wrote ({} without bad=True)."""
    root = Path(split_dir).parent
    lines = (root / _BAD_LIST).read_text().splitlines() if (root / _BAD_LIST).is_file() else []
    return {k: root / p for k, p in (line.split("\t") for line in lines)}


def make_ucf101(root: str | Path, classes=UCF_CLASSES, per_class: int = 3, frames: int = 24,
                size: tuple[int, int] = (240, 320), video_dir: str = "UCF-101", bad: bool = True,
                seed: int = 0) -> Path:
    """A UCF101-format dataset under `root` (see the module docstring); returns its split folder."""
    root = Path(root)
    split_dir = root / "ucfTrainTestlist"
    split_dir.mkdir(parents=True)
    lists = {n: ([], []) for n in SPLITS}  # split -> (train lines, test lines)
    for ci, c in enumerate(classes):
        for k in range(per_class):
            rel = f"{c}/v_{c}_g{k + 1:02d}_c01.avi"
            write_avi(root / video_dir / rel, action_frames(ci, seed * 10_000 + ci * 100 + k, frames, size))
            for n, (train, test) in lists.items():
                if k == (n - 1) % per_class:  # split n tests group gN
                    test.append(rel)
                else:
                    train.append(f"{rel} {ci + 1}")
        if bad and ci == 0:
            names = [f"v_{c}_g99_c{j:02d}.avi" for j in (1, 2, 3)]
            _write_bad(root / video_dir / c, names, root / video_dir / f"{c}/v_{c}_g01_c01.avi", root)
            for train, _ in lists.values():
                train += [f"{c}/{name} 1" for name in names]
    crlf = lambda lines: "".join(f"{x}\r\n" for x in lines).encode()  # noqa: E731
    (split_dir / "classInd.txt").write_bytes(crlf(f"{i} {c}" for i, c in enumerate(classes, 1)))
    for n, (train, test) in lists.items():
        (split_dir / f"trainlist{n:02d}.txt").write_bytes(crlf(train))
        (split_dir / f"testlist{n:02d}.txt").write_bytes(crlf(test))
    return split_dir


def make_hmdb51(root: str | Path, classes=HMDB_CLASSES, per_class: int = 4, frames: int = 24,
                size: tuple[int, int] = (240, 320), video_dir: str = "hmdb51", bad: bool = True,
                seed: int = 0) -> Path:
    """An HMDB51-format dataset under `root` (see the module docstring); returns its split folder."""
    root = Path(root)
    split_dir = root / "testTrainMulti_7030_splits"
    split_dir.mkdir(parents=True)
    for ci, c in enumerate(classes):
        names = [f"Video_{k}_{c}_f_cm_np1_fr_med_{k}.avi" for k in range(per_class)]
        for k, name in enumerate(names):
            write_avi(root / video_dir / c / name, action_frames(ci, seed * 10_000 + ci * 100 + k, frames, size))
        broken = [f"broken_{j}_{c}_f_cm_np1_fr_med_0.avi" for j in (1, 2, 3)] if bad and ci == 0 else []
        if broken:
            _write_bad(root / video_dir / c, broken, root / video_dir / c / names[0], root)
        for n in SPLITS:  # split n shifts the markers by n - 1: each split tests other videos
            lines = [f"{name} {HMDB_MARKERS[(k + n - 1) % len(HMDB_MARKERS)]} " for k, name in enumerate(names)]
            lines += [f"{name} 1 " for name in broken]
            (split_dir / f"{c}_test_split{n}.txt").write_text("\n".join(lines) + "\n")
    return split_dir
