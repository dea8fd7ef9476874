"""`edgekd pretrain STUDENT --teacher PCL_FOLDER --out DIR`: self-supervised student pretraining
boosted by a teacher's KD term (Camarena et al.; edgekd.pretrain.pcl).

    edgekd teacher pretrain --objective pcl --out teachers/pcl-tiny3d           # a PCL teacher
    edgekd pretrain r3d_18 --width 0.125 --teacher teachers/pcl-tiny3d --out pretrained/r3d
    edgekd distill --student r3d_18 --set student.width=0.125 --set student.init=pretrained/r3d

Without --teacher it is plain PCL. The result is a PCL folder: a teacher for the next student and a
`student.init` for `edgekd distill`.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgekd.cli.console import VIDEO_ROOT_HELP, check_writable, out, reporter

DATA_HELP = "Dataset (folder, manifest.json, CSV, UCF101/HMDB51 split files). Omit for the synthetic default."


def pretrain_cmd(
    student: str = typer.Argument(..., help="A registered student (edgekd distill --help lists them)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder to write (a PCL teacher folder)."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="PCL teacher folder whose pretext outputs "
                                           "the student imitates (any architecture). Omit for plain PCL."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help=DATA_HELP),
    video_root: Optional[str] = typer.Option(None, "--video-root", help=VIDEO_ROOT_HELP),
    width: Optional[float] = typer.Option(None, "--width", help="Student channel multiplier."),
    depth: Optional[int] = typer.Option(None, "--depth", help="Student blocks per stage."),
    epochs: int = typer.Option(20, "--epochs", "-e"),
    batch_size: int = typer.Option(16, "--batch-size", "-b", help="Videos per step (two clips each)."),
    lr: float = typer.Option(1e-3, "--lr"),
    kd_weight: float = typer.Option(1.0, "--kd-weight", help="Weight of T^2 * KL(teacher || student)."),
    temperature: float = typer.Option(4.0, "--temperature", "-T", help="KD temperature T."),
    set_: List[str] = typer.Option([], "--set", "-s", help="Other options: pretext_weight, contrast_weight, tau."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="Split whose unlabeled videos train."),
    labeled_fraction: Optional[float] = typer.Option(None, "--labeled-fraction",
                                                     help="Labeled share per class, held out (default 0.1)."),
    frames: Optional[int] = typer.Option(None, "--frames"),
    size: Optional[int] = typer.Option(None, "--size"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out folder."),
) -> None:
    """Pretrain a student on unlabeled clips: PCL losses + T^2 KL to a frozen self-supervised teacher."""
    from edgekd.config import merge, parse_overrides
    from edgekd.data.manifest import default_data_spec, load_dataset
    from edgekd.data.splits import SemiSplit, make_split
    from edgekd.distill.dist import resolve_device
    from edgekd.pretrain.pcl import PretrainConfig, pretrain_pcl, summary_table

    cfg = merge(PretrainConfig(student=student, width=width, depth=depth, epochs=epochs, batch_size=batch_size,
                               lr=lr, kd_weight=kd_weight, temperature=temperature, seed=seed),
                parse_overrides(set_), where="--set")
    check_writable(out_dir, "output folder", "pass --out with a folder you can write")
    manifest = load_dataset(data, video_root=video_root, reporter=reporter())  # skipped videos: one warning line
    spec = default_data_spec(manifest, frames=frames, size=size)
    if split_file is not None:
        split = SemiSplit.load(split_file)
    else:
        split = make_split(manifest, labeled_fraction=labeled_fraction or 0.1, seed=seed)
    folder = pretrain_pcl(manifest, split, spec, out_dir, cfg, teacher=teacher,
                          device=str(resolve_device(device)), force=force,
                          reporter=reporter())
    out.print(summary_table(folder, f"pretrained student written to {folder}"))
    reporter().print(f"next: edgekd distill --student {student} --set student.init={folder}")


def register(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain_cmd)
