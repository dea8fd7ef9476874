"""`edgekd teacher`: evaluate, fine-tune, pretrain and cache teachers.

    edgekd teacher zeroshot TEACHER [--data PATH] [--split test] [--template "a video of {}."]...
    edgekd teacher finetune TEACHER --out DIR [--mode linear|full] [--labeled-fraction F | --split-file F]
    edgekd teacher pretrain --objective vl|invariant|distinctive|pcl --out DIR [--data PATH] [--epochs N]
    edgekd teacher cache NAME=TEACHER... --out DIR [--clips-per-video K] [--temporal]

TEACHER is anything `edgekd.teachers.load_teacher` reads, or embedded:vl (built on first use by
edgekd.pretrain.embedded), a teacher folder,
open_clip:ARCH:WEIGHTS, an open_clip or Hugging Face model folder, an edgekd run or checkpoint.pt.
torch and the model libraries are imported inside the commands, so `edgekd --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgekd.cli.console import VIDEO_ROOT_HELP, check_writable, err, out, reporter

teacher_app = typer.Typer(name="teacher", help="Zero-shot, fine-tune, pretrain and cache teachers.",
                          no_args_is_help=True)

TEACHER_HELP = ("Teacher: embedded:vl|invariant|distinctive, a teacher folder, open_clip:ARCH:WEIGHTS, "
                "an open_clip/Hugging Face model folder, or an edgekd run/checkpoint.pt.")
DATA_HELP = "Dataset (folder, manifest.json, CSV, UCF101/HMDB51 split files). Omit for the synthetic default."
TEMPLATE_HELP = 'Prompt template with {} for the class name (repeatable; several are ensembled).'
OUT_HINT = "pass --out with a folder you can write"



def _dataset(path: Optional[str], video_root: Optional[str]):
    """load_dataset; skipped videos are one warning line through this invocation's reporter."""
    from edgekd.data.manifest import load_dataset

    return load_dataset(path, video_root=video_root, reporter=reporter())


def _spec(manifest, frames: Optional[int], size: Optional[int]):
    from edgekd.data.manifest import default_data_spec

    return default_data_spec(manifest, frames=frames, size=size)


def _device(name: str):
    from edgekd.distill.dist import resolve_device  # torch loads only when a command runs

    return resolve_device(name)


def _split(manifest, split_file: Optional[Path], fraction: Optional[float], per_class: Optional[int], seed: int):
    """The semi-supervised split: a split file, or one made on the fly (default: 10 % labeled)."""
    from edgekd.data.splits import SemiSplit, make_split

    if split_file is not None:
        if fraction is not None or per_class is not None:
            raise typer.BadParameter("give --split-file or --labeled-fraction/--labeled-per-class, not both")
        return SemiSplit.load(split_file)
    if fraction is None and per_class is None:
        fraction = 0.1
        err.print("[dim]no split given: 10 % of each class's training videos keep their labels "
                  "(--labeled-fraction / --split-file)[/dim]")
    return make_split(manifest, labeled_fraction=fraction, labeled_per_class=per_class, seed=seed)


def _load(teacher: str, spec, manifest, split=None, **opts):
    """load_teacher; an embedded:NAME teacher is built first for this dataset and split (a step of its own)."""
    from edgekd.pretrain.embedded import load_embedded
    from edgekd.teachers.loading import load_teacher

    return load_teacher(teacher, spec, embedded=lambda name: load_embedded(name, manifest, split, spec), **opts)


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


# -- zeroshot ---------------------------------------------------------------------------------------

@teacher_app.command("zeroshot")
def zeroshot_cmd(
    teacher: str = typer.Argument(..., help=TEACHER_HELP),
    data: Optional[str] = typer.Option(None, "--data", "-d", help=DATA_HELP),
    video_root: Optional[str] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP),
    split: str = typer.Option("test", "--split", help="Which split to classify: test or train."),
    template: List[str] = typer.Option([], "--template", "-t", help=TEMPLATE_HELP),
    frames: Optional[int] = typer.Option(None, "--frames", help="Frames per clip (default: the dataset's)."),
    size: Optional[int] = typer.Option(None, "--size", help="Clip size in pixels (default: the dataset's)."),
    pooling: str = typer.Option("mean", "--pooling", help="CLIP frame pooling: mean or max."),
    batch_size: int = typer.Option(16, "--batch-size", "-b"),
    workers: int = typer.Option(2, "--workers", help="Data loader workers."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    per_class: bool = typer.Option(False, "--per-class", help="Also print top-1 per class."),
) -> None:
    """Classify a split by cosine similarity between videos and class-name prompts (no training)."""
    from rich.table import Table

    from edgekd.errors import ConfigError
    from edgekd.teachers.text import DEFAULT_TEMPLATES, check_templates
    from edgekd.teachers.vl_zeroshot import zeroshot_eval

    if split not in ("train", "test"):
        raise ConfigError(f"unknown split {split!r}", "choose test or train")
    templates = check_templates(template or DEFAULT_TEMPLATES)
    manifest = _dataset(data, video_root)
    spec = _spec(manifest, frames, size)
    opts = {} if pooling == "mean" else {"pooling": pooling}
    t = _load(teacher, spec, manifest, **opts).to(_device(device))
    report = zeroshot_eval(t, manifest.split(split), spec, templates, batch_size=batch_size, num_workers=workers)

    table = Table(title="zero-shot classification")
    for col in ("teacher", "dataset", "split", "videos", "classes", "top-1", "top-5", "chance"):
        table.add_column(col, justify="right" if col in ("videos", "classes", "top-1", "top-5", "chance") else "left")
    table.add_row(str(teacher), str(manifest.source or manifest.root), split, str(report["videos"]),
                  str(len(manifest.class_names)), f"[bold]{_pct(report['top1'])}", _pct(report["top5"]),
                  _pct(report["chance"]))
    out.print(table)
    out.print("prompts: " + " | ".join(repr(t) for t in templates), highlight=False)
    if per_class:
        pc = Table(title="top-1 per class")
        pc.add_column("class")
        pc.add_column("top-1", justify="right")
        for name, acc in report["per_class"].items():
            pc.add_row(name, _pct(acc))
        out.print(pc)


# -- finetune ---------------------------------------------------------------------------------------

@teacher_app.command("finetune")
def finetune_cmd(
    teacher: str = typer.Argument(..., help=TEACHER_HELP),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Teacher folder to write."),
    mode: str = typer.Option("linear", "--mode", help="linear: head on the frozen encoder; full: everything."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help=DATA_HELP),
    video_root: Optional[str] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="Split written by `edgekd data split`."),
    labeled_fraction: Optional[float] = typer.Option(None, "--labeled-fraction", help="Labeled share per class."),
    labeled_per_class: Optional[int] = typer.Option(None, "--labeled-per-class", help="Labeled videos per class."),
    epochs: int = typer.Option(0, "--epochs", "-e", help="0 = the mode's default (linear 200, full 10)."),
    lr: float = typer.Option(0.0, "--lr", help="0 = the mode's default (linear 1e-2, full 1e-4)."),
    template: List[str] = typer.Option([], "--template", "-t", help=TEMPLATE_HELP + " Used to initialise the head."),
    frames: Optional[int] = typer.Option(None, "--frames"),
    size: Optional[int] = typer.Option(None, "--size"),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(2, "--workers"),
    device: str = typer.Option("auto", "--device"),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out folder."),
) -> None:
    """Train a classifier head (or the whole teacher) on the labeled split; `logits()` works after."""
    from rich.table import Table

    from edgekd.pretrain.finetune import FinetuneConfig, finetune_teacher
    from edgekd.teachers.loading import refuse_existing
    from edgekd.teachers.text import DEFAULT_TEMPLATES, check_templates

    refuse_existing(out_dir, force)
    check_writable(out_dir, "teacher folder", OUT_HINT)
    cfg = FinetuneConfig(mode=mode, epochs=epochs, lr=lr, seed=seed, num_workers=workers,
                         templates=check_templates(template or DEFAULT_TEMPLATES)).resolved()
    manifest = _dataset(data, video_root)
    spec = _spec(manifest, frames, size)
    semi = _split(manifest, split_file, labeled_fraction, labeled_per_class, seed)
    labeled, _ = semi.apply(manifest)
    t = _load(teacher, spec, manifest, semi).to(_device(device))
    folder = finetune_teacher(t, labeled, spec, out_dir, cfg, test=manifest.split("test"), force=force, log=err.print)

    from edgekd.teachers.loading import read_teacher_meta

    metrics = read_teacher_meta(folder)[1]["metrics"]
    table = Table(title=f"fine-tuned teacher written to {folder}")
    for col in ("teacher", "mode", "labeled videos", "epochs", "time", "test top-1", "test top-5"):
        table.add_column(col, justify="left" if col in ("teacher", "mode") else "right")
    test = metrics.get("test", {})
    table.add_row(str(teacher), mode, str(metrics["labeled_videos"]), str(cfg.epochs),
                  f"{metrics['train_seconds']:.0f} s", _pct(test["top1"]) if test else "-",
                  _pct(test["top5"]) if test else "-")
    out.print(table)


# -- pretrain ---------------------------------------------------------------------------------------

@teacher_app.command("pretrain")
def pretrain_cmd(
    objective: str = typer.Option(..., "--objective",
                                  help="vl (CLIP-style, on captions, or on class-name prompts of the labeled split "
                                       "when the data has none), invariant or distinctive (TimeBalance), "
                                       "pcl (pretext + contrastive, Camarena)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Teacher folder to write."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help=DATA_HELP),
    video_root: Optional[str] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP),
    epochs: Optional[int] = typer.Option(None, "--epochs", "-e", help="Epochs (default: the objective's)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="SSL: split whose unlabeled videos train."),
    labeled_fraction: Optional[float] = typer.Option(None, "--labeled-fraction", help="SSL: labeled share per class."),
    labeled_per_class: Optional[int] = typer.Option(None, "--labeled-per-class"),
    template: List[str] = typer.Option([], "--template", "-t",
                                       help="vl: " + TEMPLATE_HELP + " For the zero-shot check."),
    frames_in: Optional[str] = typer.Option(
        None, "--frames-in", help="What the backbone sees: rgb (frames, as in TimeBalance; the SSL default) or diff "
                                  "(frame differences; the vl default). Small CPU runs learn motion only from diff."),
    set_: List[str] = typer.Option([], "--set", "-s", help="Any other training option: --set width=2 (repeatable)."),
    frames: Optional[int] = typer.Option(None, "--frames"),
    size: Optional[int] = typer.Option(None, "--size"),
    seed: int = typer.Option(0, "--seed"),
    workers: int = typer.Option(2, "--workers"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out folder."),
) -> None:
    """Pretrain a teacher: vl aligns a video tower to MiniLM on captions; invariant/distinctive: TimeBalance SSL."""
    from edgekd.config import merge, parse_overrides
    from edgekd.errors import ConfigError
    from edgekd.registry import did_you_mean
    from edgekd.teachers.loading import refuse_existing
    from edgekd.teachers.text import check_templates

    objectives = ["vl", "invariant", "distinctive", "pcl"]
    if objective not in objectives:
        raise ConfigError(f"unknown objective {objective!r}", did_you_mean(objective, objectives))
    refuse_existing(out_dir, force)
    check_writable(out_dir, "teacher folder", OUT_HINT)
    manifest = _dataset(data, video_root)
    spec = _spec(manifest, frames, size)
    given = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("frames_in", frames_in))
             if v is not None}
    given.update(parse_overrides(set_))
    if objective == "vl":
        from edgekd.pretrain.vl import VLPretrainConfig, has_captions, pretrain_vl

        if template:
            given["templates"] = list(check_templates(template))
        cfg = merge(VLPretrainConfig(seed=seed, num_workers=workers, device=str(_device(device))), given, where="--set")
        text = "captions" if has_captions(manifest) else "prompts"
        labeled = None if text == "captions" else _split(manifest, split_file, labeled_fraction, labeled_per_class,
                                                         seed).apply(manifest.split("train"))[0]
        _print_vl(pretrain_vl(manifest, spec, out_dir, cfg, text=text, labeled=labeled, force=force, log=err.print))
        return
    semi = _split(manifest, split_file, labeled_fraction, labeled_per_class, seed)
    if objective == "pcl":
        from edgekd.pretrain.pcl import PretrainConfig, pretrain_pcl

        given.pop("frames_in", None)  # PCL sees RGB frames
        cfg = merge(PretrainConfig(seed=seed), given, where="--set")
        folder = pretrain_pcl(manifest, semi, spec, out_dir, cfg, device=str(_device(device)), force=force,
                              reporter=reporter())
        _print_pcl(folder)
        return
    from edgekd.pretrain.ssl import SSLPretrainConfig, pretrain_ssl

    cfg = merge(SSLPretrainConfig(seed=seed, num_workers=workers), given, where="--set")
    _print_ssl(objective, pretrain_ssl(objective, manifest, semi, spec, out_dir, cfg, device=str(_device(device)),
                                       force=force))


def _print_vl(folder: Path) -> None:
    from rich.table import Table

    from edgekd.pretrain.vl import zeroshot_summary
    from edgekd.teachers.loading import read_teacher_meta

    metrics = read_teacher_meta(folder)[1]["metrics"]
    table = Table(title=f"vision-language teacher written to {folder}")
    for col in ("videos", "captions", "wall time", "CPU time", "final loss", "zero-shot top-1", "top-5", "chance"):
        table.add_column(col, justify="right")
    zs = metrics.get("zeroshot", {})
    table.add_row(str(metrics["train_videos"]), str(metrics["distinct_captions"]),
                  f"{metrics['train_seconds']:.0f} s", f"{metrics['cpu_seconds']:.0f} s",
                  f"{metrics['final_loss']:.3f}", f"[bold]{_pct(zs['top1'])}" if zs else "-",
                  _pct(zs["top5"]) if zs else "-", _pct(zs["chance"]) if zs else "-")
    out.print(table)
    out.print(zeroshot_summary(metrics))


def _print_ssl(objective: str, folder: Path) -> None:
    from rich.table import Table

    from edgekd.teachers.loading import read_teacher_meta

    metrics = read_teacher_meta(folder)[1]["metrics"]
    losses = metrics.get("loss_per_epoch") or [float("nan")]
    table = Table(title=f"{objective} teacher written to {folder}")
    for col in ("objective", "unlabeled videos", "epochs", "time", "first loss", "last loss"):
        table.add_column(col, justify="left" if col == "objective" else "right")
    table.add_row(objective, str(metrics.get("unlabeled_videos", "-")), str(len(losses)),
                  f"{metrics.get('pretrain_seconds', 0):.0f} s", f"{losses[0]:.3f}", f"{losses[-1]:.3f}")
    out.print(table)


def _print_pcl(folder: Path) -> None:
    from edgekd.pretrain.pcl import summary_table

    out.print(summary_table(folder, f"PCL teacher written to {folder}"))


# -- cache ------------------------------------------------------------------------------------------

@teacher_app.command("cache")
def cache_cmd(
    teachers: List[str] = typer.Argument(..., help="NAME=TEACHER pairs (or one TEACHER); with invariant= and "
                                                   "distinctive= the TimeBalance score is cached too."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Cache folder to write."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help=DATA_HELP),
    video_root: Optional[str] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP),
    clips_per_video: int = typer.Option(4, "--clips-per-video", "-k", help="Uniform clips per video."),
    temporal: bool = typer.Option(False, "--temporal", help="Also cache per-time embeddings."),
    frames: Optional[int] = typer.Option(None, "--frames"),
    size: Optional[int] = typer.Option(None, "--size"),
    batch_size: int = typer.Option(8, "--batch-size", "-b"),
    workers: int = typer.Option(2, "--workers"),
    device: str = typer.Option("auto", "--device"),
    force: bool = typer.Option(False, "--force", help="Rebuild a cache that no longer fits."),
) -> None:
    """Precompute teacher embeddings, logits and TimeBalance scores for every clip (fp16, memory-mapped)."""
    from rich.table import Table

    from edgekd.errors import ConfigError
    from edgekd.teachers.cache import build_cache
    from edgekd.teachers.loading import EMBEDDED_PREFIX

    check_writable(out_dir, "cache folder", OUT_HINT)
    manifest = _dataset(data, video_root)
    spec = _spec(manifest, frames, size)
    dev = _device(device)
    named: dict[str, object] = {}
    for item in teachers:
        name, sep, spec_str = item.partition("=")
        if not sep:
            name, spec_str = (item[len(EMBEDDED_PREFIX):] if item.startswith(EMBEDDED_PREFIX) else "teacher"), item
        if name in named:
            raise ConfigError(f"teacher name {name!r} given twice", "write NAME=TEACHER with distinct names")
        named[name] = _load(spec_str, spec, manifest).to(dev)
    cache = build_cache(named, manifest, spec, out_dir, clips_per_video, temporal=temporal, batch_size=batch_size,
                        num_workers=workers, force=force)
    table = Table(title=f"teacher cache {out_dir}")
    for col in ("teacher", "fingerprint", "videos", "clips/video"):
        table.add_column(col, justify="right" if col in ("videos", "clips/video") else "left")
    for name in named:
        table.add_row(name, cache.fingerprint(name), str(len(manifest.entries)), str(clips_per_video))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(teacher_app, name="teacher")
