"""`edgekd data`: inspect datasets, write semi-supervised splits, generate the synthetic dataset.

    edgekd data inspect [PATH] [--decode] [--video-root DIR]
    edgekd data check [PATH] [--video-root DIR]   fails (exit 2) if any video cannot be decoded
    edgekd data split [PATH] --labeled-fraction 0.05 | --labeled-per-class N [--seed S] [--out FILE]
    edgekd data synth OUT [--classes 12 --videos-per-class 30 --frames 32 --size 64 --fps 16 --seed 0]

PATH is anything `load_dataset` reads (folder, split files, CSV, manifest.json); omitted, the
embedded synthetic dataset. Decoders and torch are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgekd.cli.console import VIDEO_ROOT_HELP, out, reporter

data_app = typer.Typer(name="data", help="Inspect datasets, write semi-supervised splits, make synthetic data.",
                       no_args_is_help=True)

PATH_HELP = "Dataset: folder, manifest.json, CSV, UCF101/HMDB51 split files. Omit for the synthetic default."


def _load(path: Optional[Path], split: int, video_root: Optional[Path]):
    """load_dataset; skipped videos are one warning line through this invocation's reporter."""
    from edgekd.data.manifest import load_dataset

    return load_dataset(path, split=split, video_root=video_root, reporter=reporter())


def _fmt_seconds(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.1f} min" if s >= 120 else f"{s:.1f} s"


@data_app.command("inspect")
def inspect_cmd(
    path: Optional[Path] = typer.Argument(None, help=PATH_HELP),
    split: int = typer.Option(1, "--split", help="UCF101/HMDB51 split number."),
    decode: bool = typer.Option(False, "--decode", help="Also decode first and last frames (finds truncated files)."),
    video_root: Optional[Path] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP),
) -> None:
    """Per-class and per-split counts, durations, fps, resolutions and every unreadable file."""
    from rich.table import Table

    from edgekd.data.inspect import inspect_manifest

    m = _load(path, split, video_root)
    report = inspect_manifest(m, decode=decode, reporter=reporter())
    counts = m.counts()

    summary = Table(title=f"dataset {m.source}", show_header=False)
    summary.add_row("root", str(m.root))
    summary.add_row("classes", str(m.num_classes))
    summary.add_row("videos", f"{len(m) + len(m.skipped)} listed, {len(report.infos)} readable, "
                              f"{len(report.problems)} unreadable")
    summary.add_row("fingerprint", m.fingerprint())
    if m.defaults:
        summary.add_row("defaults", ", ".join(f"{k}={v}" for k, v in m.defaults.items()))
    out.print(summary)

    per_class = Table(title="videos per class")
    for col in ("class", "train", "test", "total"):
        per_class.add_column(col, justify="left" if col == "class" else "right")
    labels = list(m.class_names) + (["(unlabeled)"] if any(e.label is None for e in m.entries) else [])
    for name in labels:
        tr, te = counts.get((name, "train"), 0), counts.get((name, "test"), 0)
        per_class.add_row(name, str(tr), str(te), str(tr + te))
    out.print(per_class)

    per_split = Table(title="splits")
    for col in ("split", "videos", "total duration", "mean duration", "min", "max"):
        per_split.add_column(col, justify="left" if col == "split" else "right")
    for name in ("train", "test"):
        d = report.durations(name)
        n = sum(1 for e in m.entries if e.split == name)
        per_split.add_row(name, str(n), _fmt_seconds(sum(d)), f"{sum(d) / len(d):.2f} s" if d else "-",
                          f"{min(d):.2f} s" if d else "-", f"{max(d):.2f} s" if d else "-")
    out.print(per_split)

    for title, counter in (("fps", report.fps_counts()), ("resolution", report.resolution_counts()),
                           ("codec", report.codec_counts())):
        table = Table(title=title)
        table.add_column(title)
        table.add_column("videos", justify="right")
        for value, n in counter.most_common(10):
            table.add_row(str(value), str(n))
        if len(counter) > 10:
            table.add_row(f"... {len(counter) - 10} more", str(sum(n for _, n in counter.most_common()[10:])))
        out.print(table)

    _print_problems(report.problems)


def _print_problems(problems: list[tuple[str, str]]) -> None:
    from rich.table import Table

    if not problems:
        out.print("[green]every video is readable[/green]")
        return
    bad = Table(title=f"{len(problems)} unreadable video(s)", title_style="bold red")
    bad.add_column("file", overflow="fold")
    bad.add_column("reason")
    for p, reason in problems:
        bad.add_row(p, reason)
    out.print(bad)


@data_app.command("check")
def check_cmd(
    path: Optional[Path] = typer.Argument(None, help=PATH_HELP),
    split: int = typer.Option(1, "--split", help="UCF101/HMDB51 split number."),
    video_root: Optional[Path] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP),
) -> None:
    """Decode the first and last frame of every video; list failures and fail if there are any."""
    from edgekd.data.inspect import inspect_manifest

    m = _load(path, split, video_root)
    report = inspect_manifest(m, decode=True, reporter=reporter())
    out.print(f"{len(report.infos)} of {len(m) + len(m.skipped)} videos decode")
    _print_problems(report.problems)
    if report.problems:
        from edgekd.errors import DataError

        raise DataError(f"{len(report.problems)} video(s) of {m.source} cannot be decoded",
                        "re-encode or remove the files listed above")


@data_app.command("split")
def split_cmd(
    path: Optional[Path] = typer.Argument(None, help=PATH_HELP),
    labeled_fraction: Optional[float] = typer.Option(None, "--labeled-fraction", help="Fraction of each class's training videos that keep labels, in (0, 1]."),
    labeled_per_class: Optional[int] = typer.Option(None, "--labeled-per-class", help="Labeled videos per class."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same split."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Split file to write (default: labeled_<amount>_seed<S>.txt)."),
    split: int = typer.Option(1, "--split", help="UCF101/HMDB51 split number."),
    video_root: Optional[Path] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP),
) -> None:
    """Write a class-balanced, seeded labeled/unlabeled split of the training videos."""
    from rich.table import Table

    from edgekd.data.splits import make_split

    m = _load(path, split, video_root)
    semi = make_split(m, labeled_fraction=labeled_fraction, labeled_per_class=labeled_per_class, seed=seed)
    if out_file is None:
        amount = f"{labeled_fraction * 100:g}pct" if labeled_fraction is not None else f"{labeled_per_class}perclass"
        out_file = Path(f"labeled_{amount}_seed{seed}.txt")
    semi.save(out_file)

    lab = {v for v in semi.labeled}
    table = Table(title=f"split written to {out_file}")
    for col in ("class", "labeled", "unlabeled"):
        table.add_column(col, justify="left" if col == "class" else "right")
    per: dict[str, list[int]] = {}
    ids = set(semi.labeled) | set(semi.unlabeled)
    for e in m.entries:
        if e.video_id in ids:
            name = m.class_names[e.label] if e.label is not None else "(unlabeled)"
            per.setdefault(name, [0, 0])[0 if e.video_id in lab else 1] += 1
    for name, (a, b) in per.items():
        table.add_row(name, str(a), str(b))
    table.add_row("[bold]total", f"[bold]{len(semi.labeled)}", f"[bold]{len(semi.unlabeled)}")
    out.print(table)


@data_app.command("synth")
def synth_cmd(
    out_dir: Path = typer.Argument(..., help="Folder to write videos/ and manifest.json into."),
    classes: int = typer.Option(12, "--classes", help="Number of motion classes (2-12)."),
    videos_per_class: int = typer.Option(30, "--videos-per-class"),
    frames: int = typer.Option(32, "--frames", help="Frames per video."),
    size: int = typer.Option(64, "--size", help="Width = height in pixels."),
    fps: int = typer.Option(16, "--fps"),
    seed: int = typer.Option(0, "--seed", help="Same seed, same videos."),
) -> None:
    """Generate the procedural motion dataset as H.264 mp4 files plus manifest.json."""
    import time

    from edgekd.data.manifest import Manifest
    from edgekd.data.synthetic import generate

    t0 = time.perf_counter()
    path = generate(out_dir, classes=classes, videos_per_class=videos_per_class, frames=frames, size=size,
                    seed=seed, fps=fps, reporter=reporter())
    m = Manifest.load(path)
    out.print(f"wrote {len(m)} videos ({m.num_classes} classes, {len(m.split('train'))} train / "
              f"{len(m.split('test'))} test) and {path} in {time.perf_counter() - t0:.1f} s")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
