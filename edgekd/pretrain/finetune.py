"""Fine-tune any teacher on the labeled split, so it can pseudo-label the unlabeled videos.

Çelik et al. (2023, Sec. 3.2) add a linear classifier on the vision-language teacher and train it
with cross-entropy on the labeled clips (Eq. 2) before its softmax confidences pick pseudo-labels.
Two modes:

    linear  the encoder stays frozen: embeddings of a few augmented clips per labeled video are
            computed once and a Linear(D, C) head is trained on them (seconds on a CPU). A
            vision-language teacher's head starts as its zero-shot classifier (weights = scaled
            class-prompt embeddings), so training starts from the zero-shot accuracy.
    full    head and encoder train together end to end (the paper's setting; slow without a GPU).
            Only the visual side gets gradients; a text tower stays as it was.

The result is a teacher folder of type "finetuned" (edgekd.teachers.finetuned): the base teacher's
spec plus the head (linear) or all weights (full).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError, DataError, TeacherError
from edgekd.pretrain.step import OptimizerStep, no_step_error
from edgekd.teachers.finetuned import TYPE
from edgekd.teachers.loading import refuse_existing, write_teacher_folder
from edgekd.teachers.text import DEFAULT_TEMPLATES
from edgekd.teachers.vl_progress import log, progress_bar

MODES = ("linear", "full")


@dataclasses.dataclass
class FinetuneConfig:
    mode: str = "linear"
    epochs: int = 0                 # 0 = the mode's default: 200 (linear, cheap) or 10 (full)
    lr: float = 0.0                 # 0 = the mode's default: 1e-2 (linear) or 1e-4 (full)
    weight_decay: float = 1e-4
    batch_size: int = 16
    clips_per_video: int = 4        # linear: augmented clips per labeled video to train the head on
    init_from_text: bool = True     # linear, VL teachers: start the head as the zero-shot classifier
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    seed: int = 0
    num_workers: int = 2

    def resolved(self) -> "FinetuneConfig":
        if self.mode not in MODES:
            raise ConfigError(f"unknown fine-tuning mode {self.mode!r}", "choose linear or full")
        linear = self.mode == "linear"
        return dataclasses.replace(self, epochs=self.epochs or (200 if linear else 10),
                                   lr=self.lr or (1e-2 if linear else 1e-4))


def _device(teacher) -> torch.device:
    return next(iter(teacher.parameters()), torch.zeros(0)).device


def _labeled(manifest, what: str):
    labeled = manifest.subset([e for e in manifest.entries if e.label is not None])
    if len(labeled) == 0:
        raise DataError(f"no labeled videos to {what}",
                        "pass the labeled split (edgekd data split) of a labeled dataset")
    return labeled


def init_head(teacher, class_names, cfg: FinetuneConfig) -> nn.Linear:
    """Linear(D, C); for a VL teacher, its zero-shot classifier (logit_scale * class prompt embeddings)."""
    head = nn.Linear(teacher.embed_dim, len(class_names))
    if cfg.init_from_text and hasattr(teacher, "class_text_embeddings"):
        with torch.no_grad():
            text = F.normalize(teacher.class_text_embeddings(class_names, cfg.templates).float(), dim=-1)
            head.weight.copy_(float(teacher.logit_scale) * text)
            head.bias.zero_()
    return head


@torch.no_grad()
def clip_embeddings(teacher, manifest, data_spec: DataSpec, cfg: FinetuneConfig,
                    quiet: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen embeddings of cfg.clips_per_video augmented clips per video that decodes: ((N*K, D), (N*K,)
    labels); a DataError when none does."""
    from edgekd.data.dataset import ClipDataset, make_loader

    ds = ClipDataset(manifest, data_spec, mode="train", clips_per_video=cfg.clips_per_video)
    loader = make_loader(ds, cfg.batch_size, shuffle=False, num_workers=cfg.num_workers, seed=cfg.seed)
    feats, labels, device = [], [], _device(teacher)
    with progress_bar("embed labeled clips", len(manifest) * cfg.clips_per_video, quiet=quiet) as advance:
        for batch in loader:
            x = batch["video"]
            if x.dim() == 5:                                     # one clip per video: (B, C, T, H, W)
                x = x.unsqueeze(1)
            B, K = x.shape[:2]
            feats.append(teacher.embed(x.flatten(0, 1).to(device)).float().cpu())   # (B*K, D)
            labels.append(batch["label"].repeat_interleave(K))
            advance(B * K)
    if not feats:
        raise no_step_error("fine-tuning the head", manifest, cfg.batch_size)
    return torch.cat(feats), torch.cat(labels)


def _train_linear(teacher, head: nn.Linear, labeled, data_spec, cfg: FinetuneConfig, quiet: bool) -> tuple[float, int]:
    """(final loss, optimizer steps taken)."""
    feats, labels = clip_embeddings(teacher, labeled, data_spec, cfg, quiet)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    step = OptimizerStep(opt, "fitting the linear head", "lower the learning rate (--lr)")
    with progress_bar("fit linear head", cfg.epochs * len(feats), quiet=quiet) as advance:
        for epoch in range(cfg.epochs):
            order = torch.randperm(len(feats), generator=gen)
            for b in order.split(max(cfg.batch_size, 64)):
                step(F.cross_entropy(head(feats[b]), labels[b]))            # Eq. 2
                advance(len(b), f"epoch {epoch + 1}/{cfg.epochs} loss {step.last:.3f}")
            sched.step()
    return (step.last if step.steps else 0.0), step.steps


def _train_full(teacher, labeled, data_spec, cfg: FinetuneConfig, quiet: bool) -> tuple[float, int]:
    """(final loss EMA, optimizer steps taken); a DataError when no labeled video decodes."""
    from edgekd.data.dataset import ClipDataset, make_loader

    loader = make_loader(ClipDataset(labeled, data_spec, mode="train"), min(cfg.batch_size, len(labeled)),
                         shuffle=True, num_workers=cfg.num_workers, seed=cfg.seed)
    teacher.train()
    for p in teacher.parameters():
        p.requires_grad_(True)
    params = [p for p in teacher.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    step = OptimizerStep(opt, "teacher fine-tuning", "lower the learning rate (--lr)", ema_weight=0.2)
    device = _device(teacher)
    with progress_bar("fine-tune teacher", cfg.epochs * len(labeled), quiet=quiet) as advance:
        for epoch in range(cfg.epochs):
            for batch in loader:
                step(F.cross_entropy(teacher.logits(batch["video"].to(device)), batch["label"].to(device)))  # Eq. 2
                advance(len(batch["label"]), f"epoch {epoch + 1}/{cfg.epochs} loss {step.ema:.3f}")
            if not step.steps:  # the loader dropped every batch: none of its videos decodes
                raise no_step_error("fine-tuning the teacher", labeled, loader.batch_size)
            sched.step()
    return float(step.ema), step.steps


def evaluate_head(teacher, manifest, data_spec: DataSpec, *, batch_size: int = 16, num_workers: int = 2,
                  quiet: bool = False) -> dict[str, Any]:
    """top-1/top-5 of teacher.logits on the labeled videos of `manifest` (one centre clip each)."""
    from edgekd.teachers.vl_zeroshot import accuracy_report, predict

    scores, labels = predict(teacher, manifest, data_spec, teacher.logits, batch_size=batch_size,
                             num_workers=num_workers, quiet=quiet, description="evaluate head")
    return accuracy_report(scores, labels, manifest.class_names)


def _absolute(path_text: str) -> str:
    path = Path(path_text).expanduser()
    return str(path.resolve()) if path.exists() else path_text


def _base_spec(teacher) -> str:
    """The teacher's load_teacher spec with its paths made absolute, so the folder loads from anywhere."""
    from edgekd.teachers.loading import OPEN_CLIP_PREFIX

    source = getattr(teacher, "source", None)
    if not source:
        raise TeacherError(f"cannot record where teacher {type(teacher).__name__} came from",
                           "load it with edgekd.teachers.load_teacher before fine-tuning")
    source = str(source)
    if source.startswith(OPEN_CLIP_PREFIX):
        arch, _, weights = source[len(OPEN_CLIP_PREFIX):].partition(":")
        return f"{OPEN_CLIP_PREFIX}{_absolute(arch)}:{_absolute(weights)}"
    return _absolute(source)


def finetune_teacher(teacher, labeled, data_spec: DataSpec, out_dir: str | Path, cfg: FinetuneConfig | None = None,
                     *, test=None, force: bool = False, quiet: bool = False, log=log, **overrides) -> Path:
    """Train a classifier head (and with mode="full" the encoder) on `labeled`; write a teacher folder.

    teacher: loaded with `load_teacher` (its `source` is recorded as the base). labeled: a Manifest of
    labeled videos. test: optional Manifest whose labeled videos measure the result (stored in metrics).
    After the call `teacher` carries the trained head, so `teacher.logits(x)` works.
    """
    cfg = dataclasses.replace(cfg or FinetuneConfig(), **overrides).resolved()
    refuse_existing(out_dir, force)
    labeled = _labeled(labeled, "fine-tune on")
    if tuple(labeled.class_names) != tuple(data_spec.class_names):
        raise DataError("the labeled videos' classes differ from the run's DataSpec classes",
                        "build the DataSpec from the same dataset")
    base = _base_spec(teacher)
    base_fp = teacher.fingerprint
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    head = init_head(teacher, labeled.class_names, cfg)
    if not quiet:
        log(f"[bold]finetune[/bold] ({cfg.mode}): {len(labeled)} labeled videos, {len(labeled.class_names)} classes, "
            f"{cfg.epochs} epochs")
    if cfg.mode == "linear":
        teacher.freeze()
        final_loss, steps = _train_linear(teacher, head.to(_device(teacher)), labeled, data_spec, cfg, quiet)
        teacher.attach_head(head, len(labeled.class_names))
    else:
        teacher.attach_head(head.to(_device(teacher)), len(labeled.class_names))
        final_loss, steps = _train_full(teacher, labeled, data_spec, cfg, quiet)
    teacher.freeze()
    metrics: dict[str, Any] = {"train_seconds": round(time.perf_counter() - t0, 1), "final_loss": round(final_loss, 4),
                               "steps": steps, "labeled_videos": len(labeled)}
    if test is not None and any(e.label is not None for e in test.entries):
        report = evaluate_head(teacher, test, data_spec, num_workers=cfg.num_workers, quiet=quiet)
        metrics["test"] = {k: report[k] for k in ("top1", "top5", "chance", "videos")}
    state = teacher.state_dict()
    if cfg.mode == "linear":
        state = {k: v for k, v in state.items() if k.startswith("head.")}
    record = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}
    config = {"base": base, "base_fingerprint": base_fp, "mode": cfg.mode, "embed_dim": teacher.embed_dim,
              "num_classes": len(labeled.class_names), "class_names": list(labeled.class_names),
              "finetune": record}
    if Path(base).exists():  # also where the base lies from here, so a folder tree moved as a whole still loads
        config["base_relative"] = os.path.relpath(base, Path(out_dir).resolve())
    out = write_teacher_folder(out_dir, type=TYPE, config=config, state_dict=state, data_spec=data_spec,
                               metrics=metrics)
    teacher.source = str(Path(out).resolve())
    return out
