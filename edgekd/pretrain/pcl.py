"""Self-supervised pretraining boosted by distillation (Camarena et al., Sec. 3, Fig. 2).

The student learns on unlabeled clips with its own PCL losses (edgekd.teachers.pcl) and, in the same
loss, imitates a frozen, already self-supervised teacher (any architecture) on the pretext outputs:

    L = w_p * CE(pretext) + w_c * L_contrast + w_kd * T^2 * KL(softmax(t / T) || softmax(s / T))

t and s are the teacher's and the student's transformation logits for the very same transformed
clip (Sec. 3: "the relative entropy between the outputs of the two models", temperature-softened
"to remove probabilities near zero"); T^2 keeps the KD gradient's scale independent of T (Hinton).
Without a teacher the loop is plain PCL, which is how the paper trains its teachers and baselines
(Sec. 3, "trained using the PCL framework"): `edgekd teacher pretrain --objective pcl`.

    pretrain_pcl(manifest, split, spec, out_dir, PretrainConfig(...), teacher=PATH) -> folder

The result is a PCL teacher folder: it can teach the next student, and `--set student.init=FOLDER`
starts `edgekd distill` (or a plain fine-tune, recipe=supervised) from its backbone.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError, TeacherError
from edgekd.pretrain.augment import augment
from edgekd.pretrain.clips import clip_source, unlabeled
from edgekd.pretrain.step import OptimizerStep, no_step_error
from edgekd.teachers.loading import read_teacher_meta, refuse_existing
from edgekd.teachers.losses import hinton_kd
from edgekd.teachers.pcl import PCLNet, build_pcl, load_pcl, pcl_loss, save_pcl
from edgekd.teachers.vl_progress import progress_bar

VIEWS = 2  # clips per video: the two views of the contrastive term


@dataclass
class PretrainConfig:
    student: str = "tiny3d"      # a registered student (edgekd.students)
    width: float | None = None   # student options, passed only when set
    depth: int | None = None
    epochs: int = 20
    batch_size: int = 16         # videos per step (two clips each)
    lr: float = 1e-3             # Adam, constant: the comparison is per epoch, not per schedule
    pretext_weight: float = 1.0  # w_p
    contrast_weight: float = 1.0  # w_c
    kd_weight: float = 1.0       # w_kd (0 or no teacher: plain PCL)
    temperature: float = 4.0     # T
    tau: float = 0.1             # contrastive temperature (TimeBalance / SimCLR)
    seed: int = 0

    def student_kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in (("width", self.width), ("depth", self.depth)) if v is not None}

    def check(self) -> None:
        for key in ("epochs", "batch_size"):
            if getattr(self, key) < 1 or (key == "batch_size" and self.batch_size < 2):
                raise ConfigError(f"{key} must be >= {1 if key == 'epochs' else 2}, got {getattr(self, key)}",
                                  "the contrastive term needs 2 or more videos per batch")
        if self.lr <= 0 or self.temperature <= 0 or self.tau <= 0:
            raise ConfigError("lr, temperature and tau must be > 0", "e.g. lr=1e-3 temperature=4 tau=0.1")
        if min(self.pretext_weight, self.contrast_weight, self.kd_weight) < 0:
            raise ConfigError("loss weights must be >= 0", "e.g. kd_weight=1")


def load_frozen_teacher(path: str | Path, spec: DataSpec) -> PCLNet:
    """A PCL teacher for KD: eval mode, no gradients, trained on clips shaped like the student's
    (the pretext labels are frame orders of T frames, so T must agree)."""
    net, tspec, _ = load_pcl(path)
    if (tspec.frames, tspec.size) != (spec.frames, spec.size):
        raise TeacherError(f"teacher {path} was pretrained on {tspec.frames}x{tspec.size} clips, "
                           f"the student sees {spec.frames}x{spec.size}",
                           f"pass --frames {tspec.frames} --size {tspec.size}, or pretrain a teacher at this size")
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def student_loss(student: PCLNet, teacher: PCLNet | None, views: torch.Tensor, gen: torch.Generator,
                 cfg: PretrainConfig) -> dict[str, torch.Tensor]:
    """Fig. 2 for one batch of (B, 2, C, T, H, W) views: the student's PCL terms plus the KD term."""
    terms, shown, _, logits = pcl_loss(student, views, gen, cfg.tau, cfg.pretext_weight, cfg.contrast_weight)
    if teacher is not None and cfg.kd_weight > 0:
        with torch.no_grad():
            teacher_logits, _ = teacher(shown)                  # (2B, K): same clips, same transformations
        terms["kd"] = hinton_kd(logits, teacher_logits, cfg.temperature)
        terms["loss"] = terms["loss"] + cfg.kd_weight * terms["kd"]
    return terms


def _epoch(net: PCLNet, frozen: PCLNet | None, source, batch_size: int, views: dict[str, Any], step: OptimizerStep,
           gen: torch.Generator, cfg: PretrainConfig, device: str, advance, epoch: int) -> dict[str, float]:
    """One epoch of Fig. 2's loss over the clip source -> mean of each loss term over its videos."""
    net.train()
    for clips in source.epoch(batch_size, VIEWS, gen):
        clips = clips.to(device)
        B = clips.shape[0]
        clips = augment(clips.flatten(0, 1), generator=gen, **views).reshape(clips.shape)
        terms = student_loss(net, frozen, clips, gen, cfg)
        step(terms["loss"], B, terms)
        advance(B, f"epoch {epoch}/{cfg.epochs} loss {step.running:.3f}")
    return step.epoch_means()


def pretrain_pcl(manifest, split, spec: DataSpec, out_dir: str | Path, cfg: PretrainConfig, *,
                 teacher: str | Path | None = None, device: str = "cpu", progress: bool = True,
                 force: bool = False, on_epoch: Callable[[int, PCLNet], dict[str, Any] | None] | None = None,
                 reporter=None) -> Path:
    """Pretrain `cfg.student` with PCL (+ KD from `teacher`, a PCL folder) on the split's unlabeled
    videos; write the PCL folder `out_dir` and return it.

    on_epoch(epoch, net) runs after every epoch (and as epoch 0 before training) with the network in
    eval mode; what it returns is stored in the folder's metrics per epoch (the benchmark's probe).
    reporter: the CLI's edgekd.report.Reporter for the progress line (None: a default one).
    """
    from edgekd.data.transforms import AugmentConfig

    cfg.check()
    refuse_existing(out_dir, force)
    frozen = None if teacher is None else load_frozen_teacher(teacher, spec).to(device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = build_pcl(cfg.student, cfg.student_kwargs(), spec).to(device)
    videos = unlabeled(manifest, split)
    source, batch_size = clip_source(videos, spec, VIEWS, cfg.batch_size, seed=cfg.seed, quiet=not progress)
    aug = AugmentConfig.for_manifest(manifest.defaults)
    views = dict(hflip=aug.hflip, scale=tuple(aug.crop_scale), jitter=aug.jitter, grayscale_p=aug.grayscale_p)
    step = OptimizerStep(torch.optim.Adam(net.parameters(), lr=cfg.lr), "PCL pretraining", "lower lr")

    def evaluate(epoch: int) -> dict[str, Any]:
        if on_epoch is None:
            return {}
        net.eval()
        with torch.no_grad():
            return on_epoch(epoch, net) or {}

    history, probes, start = [], [evaluate(0)], time.perf_counter()
    per_epoch = len(source) // batch_size * batch_size  # videos in full batches
    with progress_bar("pcl" + (" + kd" if frozen is not None else ""), cfg.epochs * per_epoch,
                      quiet=not progress, reporter=reporter) as advance:
        for epoch in range(1, cfg.epochs + 1):
            means = _epoch(net, frozen, source, batch_size, views, step, gen, cfg, device, advance, epoch)
            if not step.steps:
                raise no_step_error("PCL pretraining", videos, batch_size)
            history.append({k: round(v, 4) for k, v in means.items()})
            probes.append(evaluate(epoch))

    net.cpu().eval()
    pretrain = {**asdict(cfg), "teacher": None if teacher is None else str(teacher),
                "dataset": manifest.fingerprint()}
    metrics = {"pretrain_seconds": round(time.perf_counter() - start, 1), "unlabeled_videos": len(source),
               "steps": step.steps, "loss_per_epoch": history, "probe_per_epoch": probes}
    return save_pcl(net, out_dir, spec, cfg.student, cfg.student_kwargs(), pretrain, metrics)


def summary(folder: str | Path) -> dict[str, str]:
    """One table row (column -> text) describing a PCL folder, for the CLI."""
    meta = read_teacher_meta(folder)[1]
    cfg, metrics = meta["config"], meta["metrics"]
    losses = metrics.get("loss_per_epoch") or [{}]
    last = losses[-1]
    return {"student": f"{cfg['backbone']} {cfg.get('backbone_kwargs') or ''}".strip(),
            "teacher": str(cfg["pretrain"].get("teacher") or "-"),
            "unlabeled videos": str(metrics.get("unlabeled_videos", "-")), "epochs": str(len(losses)),
            "time": f"{metrics.get('pretrain_seconds', 0):.0f} s",
            "pretext CE": f"{last.get('pretext', float('nan')):.3f}",
            "contrast": f"{last.get('contrast', float('nan')):.3f}",
            "KD": f"{last['kd']:.3f}" if "kd" in last else "-"}


def summary_table(folder: str | Path, title: str):
    """A rich Table with the one summary row of a PCL folder (`edgekd pretrain`, `teacher pretrain --objective pcl`)."""
    from rich.table import Table

    row = summary(folder)
    table = Table(title=title)
    for col in row:
        table.add_column(col, justify="left" if col in ("student", "teacher") else "right")
    table.add_row(*row.values())
    return table
