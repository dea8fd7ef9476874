"""Self-supervised pretraining of TimeBalance's two teachers (Dave et al., CVPR 2023).

    pretrain_ssl("invariant", ...)    backbone + projection head trained with L_I (Eq. 1)
    pretrain_ssl("distinctive", ...)  ... with L_D = L_D1 (Eq. 3) + L_D2 (supplement D.2)

Pretraining sees the split's UNLABELED videos only, n clips per video (random starts, one per
segment of the video, sorted in time), Adam at 1e-3 with a linear warm-up and a halving of the
learning rate on a loss plateau (supplement B.2). The networks and their folder are
edgekd.teachers.ssl_teacher; the per-batch objectives edgekd.pretrain.ssl_objectives; fine-tuning on
the labeled split (edgekd.pretrain.finetune) attaches the classifier.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import torch

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError
from edgekd.pretrain.augment import authors_augment
from edgekd.pretrain.clips import DATA_MODES, clip_source, unlabeled
from edgekd.pretrain.ssl_objectives import authors_objective_loss, global_stride, paper_objective_loss
from edgekd.pretrain.step import OptimizerStep, no_step_error, set_lr
from edgekd.teachers.loading import refuse_existing
from edgekd.teachers.losses import DEFAULT_TAU
from edgekd.teachers.ssl_teacher import OBJECTIVES, Objective, SSLTeacher, build_ssl_teacher
from edgekd.teachers.timebalance import FIDELITIES
from edgekd.teachers.vl_progress import progress_bar


@dataclasses.dataclass
class SSLPretrainConfig:
    """How one teacher of the pair trains (defaults: supplement B.2, at edgekd's small scale)."""

    backbone: str = "tiny3d"                # a registered student family
    backbone_kwargs: dict = dataclasses.field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 16                    # the negatives of L_I are the other videos of the batch
    lr: float = 1e-3                        # Adam, betas 0.9/0.999
    warmup_epochs: int = 10                 # linear warm-up, capped at half the run
    clips: int = 4                          # n clips per video
    tau: float = DEFAULT_TAU
    patience: int = 5                       # epochs without improvement before the rate halves
    seed: int = 0
    frames_in: str = "rgb"                  # rgb (the paper) or diff (temporal gradients, SSLBackbone)
    fidelity: str = "authors"               # authors (their code) or paper (the equations read literally)
    jitter: float | None = None             # "paper" only: colour augmentation strength (None: the dataset's)
    grayscale_p: float | None = None
    data: str = "auto"                      # memory | stream | auto (edgekd.pretrain.clips.clip_source)
    max_memory_mb: float = 2048
    num_workers: int = 2

    def check(self, objective: str) -> None:
        from edgekd.registry import did_you_mean

        if objective not in OBJECTIVES:
            raise ConfigError(f"unknown SSL objective {objective!r}", did_you_mean(objective, list(OBJECTIVES)))
        if self.clips < 2 or self.epochs < 1 or self.batch_size < 2:
            raise ConfigError(f"pretraining needs clips >= 2, epochs >= 1, batch_size >= 2 "
                              f"(got {self.clips}, {self.epochs}, {self.batch_size})", "raise the value named")
        if self.data not in DATA_MODES:
            raise ConfigError(f"unknown data mode {self.data!r}", "choose auto, memory or stream")
        if self.fidelity not in FIDELITIES:
            raise ConfigError(f"unknown TimeBalance fidelity {self.fidelity!r}",
                              did_you_mean(self.fidelity, list(FIDELITIES)))


def _views(cfg: SSLPretrainConfig, aug, spec: DataSpec, gen: torch.Generator) -> tuple[Callable, dict[str, Any]]:
    """(what the objective augments with, its record in teacher.json): for "authors" a callable
    (clips -> one random augmentation each), for "paper" the keyword arguments of `augment`."""
    if cfg.fidelity == "authors":
        return (lambda c: authors_augment(c, spec.mean, spec.std, aug.hflip, gen)), {"authors": True, "hflip": aug.hflip}
    views = dict(hflip=aug.hflip, scale=tuple(aug.crop_scale), jitter=aug.jitter if cfg.jitter is None else cfg.jitter,
                 grayscale_p=aug.grayscale_p if cfg.grayscale_p is None else cfg.grayscale_p)
    return views, views


def _train(objective: str, teacher: SSLTeacher, source, batch_size: int, cfg: SSLPretrainConfig, views,
           stride: int, gen: torch.Generator, device: str, progress: bool) -> tuple[OptimizerStep, list[float]]:
    """The epochs: Adam with a linear warm-up, then halved on a plateau. -> (the steps taken, loss per epoch)."""
    net, proj = teacher.backbone.to(device), teacher.projection.to(device)
    steps_per_epoch = max(1, len(source) // batch_size)
    warmup_steps = max(1, min(cfg.warmup_epochs, max(1, cfg.epochs // 2)) * steps_per_epoch)
    params = list(net.parameters()) + list(proj.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=cfg.patience)
    step = OptimizerStep(opt, f"{objective} pretraining", "lower --lr")
    net.train(), proj.train()
    for p in params:
        p.requires_grad_(True)
    history: list[float] = []
    with progress_bar(f"pretrain {objective}", cfg.epochs * steps_per_epoch * batch_size, "videos",
                      quiet=not progress) as advance:
        for epoch in range(cfg.epochs):
            for x in source.epoch(batch_size, cfg.clips, gen):
                x = x.to(device, non_blocking=True)                         # (B, n, 3, T, H, W)
                if x.shape[0] < 2:
                    continue  # a batch shrunk by undecodable videos gives L_I no negatives
                if step.steps < warmup_steps:
                    set_lr(opt, cfg.lr * (step.steps + 1) / warmup_steps)
                if cfg.fidelity == "authors":
                    loss = authors_objective_loss(objective, net, proj, x, views, stride, cfg.tau)
                else:
                    loss = paper_objective_loss(objective, net, proj, x, views, stride, cfg.tau, gen)
                step(loss, x.shape[0])
                advance(x.shape[0], f"epoch {epoch + 1}/{cfg.epochs} loss {step.running:.3f}")
            if not step.steps:  # streamed videos failed until no batch of 2 was left
                raise no_step_error(f"{objective} pretraining", source.videos, batch_size)
            history.append(step.epoch_means().get("loss", 0.0))
            if step.steps >= warmup_steps:
                plateau.step(history[-1])
    return step, history


def pretrain_ssl(objective: Objective, manifest, split, data_spec: DataSpec, out_dir: str | Path,
                 cfg: SSLPretrainConfig | None = None, *, device: str = "cpu", force: bool = False,
                 progress: bool = True, **overrides) -> Path:
    """Self-supervised pretraining of one TimeBalance teacher on the split's unlabeled videos.

    objective "invariant" minimises L_I (Eq. 1), "distinctive" L_D = L_D1 (Eq. 3) + L_D2 (supp. D.2).
    Each video gives `cfg.clips` clips (n in the paper). `jitter`/`grayscale_p` override the dataset's
    colour augmentation strength (AugmentConfig). `frames_in="diff"` feeds the backbone temporal
    gradients instead of frames (SSLBackbone). `fidelity="authors"` wires it as the authors' code
    does: n back-to-back clips in one random window, the long clip over that window, two
    augmentations of every clip and of the long clip (their augmentation, edgekd.pretrain.augment;
    `jitter` and `grayscale_p` then do not apply), and their loss weights
    (edgekd.teachers.losses.authors_*). "paper" samples one clip per segment of the video and reads
    the equations literally. `overrides` replace fields of `cfg`. Writes the teacher folder `out_dir`
    and returns it; an existing folder is replaced only with `force=True`.
    """
    from edgekd.data.transforms import AugmentConfig

    cfg = dataclasses.replace(cfg or SSLPretrainConfig(), **overrides)
    out_dir = Path(out_dir)
    cfg.check(objective)
    refuse_existing(out_dir, force)

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    videos = unlabeled(manifest, split)
    aug = AugmentConfig.for_manifest(manifest.defaults)              # hflip off where direction is the label
    source, batch_size = clip_source(videos, data_spec, cfg.clips, cfg.batch_size, data=cfg.data,
                                     max_mb=cfg.max_memory_mb, num_workers=cfg.num_workers, seed=cfg.seed,
                                     sampling="window" if cfg.fidelity == "authors" else "random",
                                     quiet=not progress)
    teacher = build_ssl_teacher(objective, data_spec, cfg.backbone, cfg.backbone_kwargs, frames_in=cfg.frames_in)
    stride = global_stride(teacher.backbone.to(device), cfg.clips, data_spec.frames, data_spec.size) \
        if objective == "distinctive" or cfg.fidelity == "authors" else 1
    views, record = _views(cfg, aug, data_spec, gen)
    start = time.perf_counter()
    step, history = _train(objective, teacher, source, batch_size, cfg, views, stride, gen, device, progress)

    teacher.cpu().freeze()
    teacher.projection.cpu()
    pretrain = {"frames_in": cfg.frames_in, "fidelity": cfg.fidelity, "epochs": cfg.epochs, "batch_size": batch_size,
                "lr": cfg.lr, "warmup_epochs": cfg.warmup_epochs, "clips": cfg.clips, "tau": cfg.tau, "seed": cfg.seed,
                "dataset": manifest.fingerprint(),
                "augment": {k: list(v) if isinstance(v, tuple) else v for k, v in record.items()}}
    metrics = {"pretrain_seconds": round(time.perf_counter() - start, 1), "unlabeled_videos": len(source),
               "steps": step.steps, "loss_per_epoch": [round(v, 4) for v in history]}
    return teacher.save(out_dir, metrics, pretrain)
