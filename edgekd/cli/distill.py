"""`edgekd distill`, `edgekd eval`, `edgekd ablate`: thin wrappers over edgekd.distill.

torch and the training code are imported inside the commands, so `edgekd --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgekd.cli import console
from edgekd.cli.console import VIDEO_ROOT_HELP

RECIPE_NAMES = ("supervised", "feature", "pseudo", "feature+pseudo", "kd", "timebalance", "timebalance-avg",
                "timebalance-one")  # kept in step with edgekd.distill.recipes.RECIPES (tests/distill checks)


def distill_cmd(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config (e.g. configs/ucf101_split1_timebalance_5pct.toml)."),
    set_: List[str] = typer.Option([], "--set", "-s", help="Override any config key: --set optim.lr=3e-4 (repeatable)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help="Recipe: " + ", ".join(RECIPE_NAMES) + " (default: auto, chosen from the data; the run header says which and why)."),
    teacher: List[str] = typer.Option([], "--teacher", "-t", help="ROLE=PATH: a teacher for a role (vl, kd, invariant, distinctive), e.g. --teacher vl=models/xclip (repeatable). Default: embedded teachers built on the data."),
    template: List[str] = typer.Option([], "--template", help='Class-name prompt for the VL teacher without captions, e.g. "a video of a person {}." (repeatable).'),
    student: Optional[str] = typer.Option(None, "--student", help="Student network (e.g. tiny3d, r3d_18)."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Dataset path; default: the embedded synthetic dataset."),
    video_root: Optional[str] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP),
    labeled: Optional[float] = typer.Option(None, "--labeled", "-l", help="Fraction of train videos with labels, in (0, 1]."),
    epochs: Optional[int] = typer.Option(None, "--epochs", "-e", help="Epochs to train."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Run folder name under runs/ (default: derived)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a run exactly (run folder or name)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data loader workers per process."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed."),
    baseline: Optional[bool] = typer.Option(None, "--baseline/--no-baseline",
                                            help="Also train the supervised baseline on the same labels and compare."),
    tensorboard: Optional[bool] = typer.Option(None, "--tensorboard/--no-tensorboard", help="Write TensorBoard events."),
    stop_after: Optional[int] = typer.Option(None, "--stop-after", help="Train only this many epochs now; continue with --resume."),
) -> None:
    """Distil teachers into a small student on few labels (default: the embedded synthetic data)."""
    from edgekd.distill.config import flag_overrides, load_config, resume_config, with_templates

    overrides = flag_overrides(teacher, recipe=recipe, student=student, data=data, video_root=video_root,
                                labeled=labeled, epochs=epochs,
                                name=name, device=device, workers=workers, seed=seed, baseline=baseline,
                                tensorboard=tensorboard) + list(set_)
    if resume is not None:
        if config is not None:
            raise typer.BadParameter("--resume continues a run with its own config; drop --config")
        cfg, run_dir = resume_config(resume, overrides)
    else:
        cfg, run_dir = load_config(config, overrides), None
    cfg = with_templates(cfg, template)
    console.check_run_folder(cfg, run_dir)
    from edgekd.distill.compare import train_and_compare

    train_and_compare(cfg, resume=run_dir, stop_after=stop_after, reporter=console.reporter(), table_console=console.out)


def eval_cmd(
    run: str = typer.Argument(..., help="Run folder (runs/NAME) or its checkpoint.pt."),
    clips: Optional[int] = typer.Option(None, "--clips", "-k", help="Temporal clips per video (default: the run's, 10)."),
    crops: Optional[int] = typer.Option(None, "--crops", help="Spatial crops per clip: 1 or 3 (default 3)."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Dataset path (default: the run's)."),
    video_root: Optional[str] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP + " Default: the run's."),
    best: bool = typer.Option(False, "--best", help="Evaluate best.pt instead of the last checkpoint."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data loader workers."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", help="Videos per batch."),
    per_class: bool = typer.Option(True, "--per-class/--no-per-class", help="Print the per-class table."),
) -> None:
    """Multi-view test accuracy of a run: top-1/top-5, per class, confusion-matrix PNG, eval.json."""
    from rich.table import Table

    from edgekd.distill.config import resolve_run
    from edgekd.distill.evaluate import evaluate_run

    run_dir, checkpoint = resolve_run(run), "best.pt" if best else "checkpoint.pt"
    if run_dir.is_dir():  # eval.json and confusion.png go there: find out before evaluating
        console.check_writable(run_dir, "run folder", f"pass {run_dir / checkpoint} to evaluate without writing "
                                                      "eval.json, or copy the run to a folder you can write")
    r = evaluate_run(run_dir, data=data, video_root=video_root, clips=clips, crops=crops, batch_size=batch_size,
                     workers=workers, device=device, checkpoint=checkpoint, reporter=console.reporter())
    p = r["protocol"]
    table = Table(title=f"{r['run']}  ({r['student']}, {r['recipe']})")
    for col in ("videos", "views", "top-1", "top-5", "time"):
        table.add_column(col, justify="right")
    table.add_row(str(r["num_videos"]), f"{p['clips']} clips x {p['crops']} crops", f"{100 * r['top1']:.1f}%",
                  f"{100 * r['top5']:.1f}%", f"{r['seconds']:.1f} s")
    console.out.print(table)
    if per_class:
        pc = Table(title="per-class accuracy")
        pc.add_column("class")
        pc.add_column("videos", justify="right")
        pc.add_column("accuracy", justify="right")
        for name, v in r["per_class"].items():
            pc.add_row(name, str(v["videos"]), "-" if v["accuracy"] is None else f"{100 * v['accuracy']:.1f}%")
        console.out.print(pc)
    for f in r.get("files", []):
        console.out.print(f"wrote {f}")


def ablate_cmd(
    labeled: str = typer.Option("0.05,0.1", "--labeled", "-l", help="Comma-separated label fractions."),
    recipes: Optional[str] = typer.Option(None, "--recipes", help="Comma-separated recipes (default: all)."),
    epochs: int = typer.Option(10, "--epochs", "-e", help="Epochs per run (same for every recipe)."),
    out: Path = typer.Option(Path("runs/ablation"), "--out", "-o", help="Folder for the runs, ablation.md and .json."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Dataset (default: the embedded synthetic one)."),
    video_root: Optional[str] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP),
    set_: List[str] = typer.Option([], "--set", "-s", help="Config overrides applied to every run."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds; results are averaged over them."),
) -> None:
    """Train the supervised baseline and every recipe at each label fraction; write a markdown table + JSON."""
    from edgekd.distill.ablation import run_ablation
    from edgekd.distill.config import flag_overrides, load_config
    from edgekd.distill.recipes import RECIPES

    fractions = console.number_list(labeled, "--labeled", float, "0.05,0.1")
    seed_list = console.number_list(seeds, "--seeds", int, "0,1,2")
    names = [r for r in recipes.split(",") if r] if recipes else None
    overrides = flag_overrides(video_root=video_root) + list(set_)
    for recipe in names or RECIPES.names():  # every run's config holds before the first one trains
        for fraction in fractions:
            load_config(None, flag_overrides(recipe=recipe, labeled=fraction, epochs=epochs, data=data) + overrides)
    console.check_writable(out, "ablation folder", "pass --out with a folder you can write")
    run_ablation(fractions=fractions, recipes=names, epochs=epochs, out=out, data=data, overrides=overrides, seeds=seed_list,
                 reporter=console.reporter(), table_console=console.out)


def register(app: typer.Typer) -> None:
    app.command("distill", no_args_is_help=False)(distill_cmd)
    app.command("eval")(eval_cmd)
    app.command("ablate")(ablate_cmd)
