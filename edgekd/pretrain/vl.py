"""Vision-language alignment pretraining of the embedded VL teacher (edgekd.teachers.embedded_vl).

CLIP's recipe (Radford et al. 2021) at toy scale: the video tower and its linear projection are
trained on (clip, text) pairs of the training videos against the frozen all-MiniLM-L6-v2 embeddings
of the texts, with CLIP's symmetric InfoNCE and a learned temperature plus a cosine regression onto
the text embedding (edgekd.teachers.vl_loss). The texts are the videos' captions (every captioned
training video, labeled or not) or, for datasets without captions, class-name prompts of the
labeled videos (`training_texts`). AdamW, linear warm-up then cosine decay.

    pretrain_vl(manifest, spec, out_dir, VLPretrainConfig(...), text="captions") -> teacher folder

Its zero-shot accuracy on the test split is measured and stored in teacher.json.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError, DataError
from edgekd.pretrain.clips import ClipBank, loader_batches
from edgekd.pretrain.step import OptimizerStep, no_step_error, set_lr
from edgekd.teachers.embedded_vl import TYPE, EmbeddedVLTeacher
from edgekd.teachers.loading import refuse_existing, write_teacher_folder
from edgekd.teachers.text import DEFAULT_TEMPLATES, MINILM_DIM, MINILM_NAME, minilm_encoder
from edgekd.teachers.vl_loss import alignment_loss
from edgekd.teachers.vl_progress import log, progress_bar


@dataclasses.dataclass
class VLPretrainConfig:
    epochs: int = 20
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 2
    backbone: str = "tiny3d"
    width: float = 1.0                  # tiny3d channel multiplier (16-32-64-128 at 1.0)
    net_size: int = 32                  # the tower's own input size: clips are resized to it inside
    frames_in: str = "diff"             # the tower sees frame differences ("diff") or the frames ("rgb")
    contrastive: float = 1.0            # weight of CLIP's symmetric InfoNCE
    regress: float = 1.0                # weight of the cosine regression onto the caption embedding
    seed: int = 0
    device: str = "cpu"                 # where the tower trains (clips are decoded on the CPU)
    num_workers: int = 2                # only for datasets too large for the in-memory clip bank
    max_bank_mb: float = 2048.0         # decode the training videos into memory up to this size
    templates: tuple[str, ...] = DEFAULT_TEMPLATES   # for the zero-shot evaluation at the end


TEXT_SOURCES = ("captions", "prompts")


def caption_table(manifest) -> tuple[list[int], list[str]]:
    """Entries with captions -> (caption id per entry (-1 if none), the distinct captions)."""
    ids: dict[str, int] = {}
    per_entry = []
    for e in manifest.entries:
        if e.caption and e.caption.strip():
            per_entry.append(ids.setdefault(e.caption.strip(), len(ids)))
        else:
            per_entry.append(-1)
    return per_entry, list(ids)


def has_captions(manifest) -> bool:
    """Enough captioned training videos for caption alignment (the contrastive loss compares >= 2)."""
    return sum(c >= 0 for c in caption_table(manifest.split("train"))[0]) >= 2


def training_texts(manifest, text: str, labeled=None, templates=DEFAULT_TEMPLATES):
    """(videos, text id per video, texts) the tower is aligned on.

    "captions": every captioned training video, labeled or not, with its own caption (the VL paper's
    web captions). "prompts": only the `labeled` videos, each with its class-name prompt (the first
    template), for datasets without captions: the unlabeled videos' classes are unknown, so they
    contribute nothing here and are left to the recipe's distillation stage.
    """
    from edgekd.teachers.text import render_prompts

    if text == "captions":
        train = manifest.split("train")
        cap_of_entry, texts = caption_table(train)
        videos = train.subset([e for e, c in zip(train.entries, cap_of_entry) if c >= 0])
        ids = [c for c in cap_of_entry if c >= 0]
        hint = "add a caption per video (manifest.json 'caption'), or build the teacher from class-name prompts"
    elif text == "prompts":
        videos = labeled if labeled is not None else manifest.split("train")
        videos = videos.subset([e for e in videos.entries if e.label is not None])
        texts = [prompts[0] for prompts in render_prompts(manifest.class_names, templates)]
        ids = [e.label for e in videos.entries]
        hint = "label at least two training videos (--labeled)"
    else:
        raise ConfigError(f"unknown VL text source {text!r}", "choose " + " or ".join(TEXT_SOURCES))
    if len(videos) < 2:
        raise DataError(f"vision-language pretraining from {text} needs at least 2 training videos; {manifest.root} "
                        f"has {len(videos)}", hint)
    return videos, torch.tensor(ids), texts


def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warmup then cosine decay to 0."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _epochs(train, data_spec: DataSpec, cfg: VLPretrainConfig, quiet: bool):
    """(epoch(gen) -> (clips, manifest positions) batches, videos per epoch, batch size): the in-memory
    ClipBank, or streamed clips for datasets too large to hold (a batch shrinks by the videos that fail)."""
    if ClipBank.estimate_mb(train, data_spec) <= cfg.max_bank_mb:
        bank = ClipBank(train, data_spec, quiet=quiet)
        batch_size = min(cfg.batch_size, len(bank))            # the videos that decoded: >= 1 batch per epoch
        return (lambda g: bank.batches(batch_size, g)), len(bank), batch_size
    batch_size = min(cfg.batch_size, len(train))
    return loader_batches(train, data_spec, batch_size, cfg.num_workers, cfg.seed), len(train), batch_size


def _optimizer(teacher: EmbeddedVLTeacher, cfg: VLPretrainConfig) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases and norm scales (1-d parameters)."""
    decay = [p for p in teacher.parameters() if p.dim() > 1]
    no_decay = [p for p in teacher.parameters() if p.dim() <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def _align(teacher: EmbeddedVLTeacher, epochs, n_videos: int, batch_size: int, text_ids: torch.Tensor,
           text_emb: torch.Tensor, cfg: VLPretrainConfig, gen: torch.Generator, quiet: bool) -> OptimizerStep:
    """The training epochs; returns the steps taken (and their loss EMA)."""
    device = text_emb.device
    opt = _optimizer(teacher, cfg)
    step = OptimizerStep(opt, "vl pretraining", "lower the learning rate (lr=...)", ema_weight=0.1)
    steps_per_epoch = n_videos // batch_size
    total = cfg.epochs * steps_per_epoch
    with progress_bar("vl pretrain", total * batch_size, unit="clips", quiet=quiet) as advance:
        for epoch in range(cfg.epochs):
            for x, idx in epochs(gen):
                x = x.to(device, non_blocking=True)
                set_lr(opt, _lr_at(step.steps, total, cfg.warmup_epochs * steps_per_epoch, cfg.lr))
                groups = text_ids[idx]
                step(alignment_loss(teacher.embed(x), text_emb[groups], teacher.scale(), groups,
                                    cfg.contrastive, cfg.regress))
                advance(len(x), f"epoch {epoch + 1}/{cfg.epochs} loss {step.ema:.3f}")
            if not step.steps:  # every streamed batch failed to decode
                return step
    return step


def pretrain_vl(manifest, data_spec: DataSpec, out_dir: str | Path, cfg: VLPretrainConfig | None = None, *,
                text: str = "captions", labeled=None, force: bool = False, quiet: bool = False, log=log,
                **overrides) -> Path:
    """Align a video tower to MiniLM on the training videos' texts; write a teacher folder.

    manifest: the whole dataset. text: "captions" (its captioned "train" videos, labeled or not) or
    "prompts" (the `labeled` videos with class-name prompts; see training_texts). Its labeled "test"
    videos measure the zero-shot accuracy stored in teacher.json.
    """
    cfg = dataclasses.replace(cfg or VLPretrainConfig(), **overrides)
    if cfg.epochs < 1 or cfg.batch_size < 2 or cfg.net_size < 8:
        raise ConfigError(f"vl pretraining needs epochs >= 1, batch_size >= 2 and net_size >= 8 (got {cfg.epochs}, "
                          f"{cfg.batch_size}, {cfg.net_size})", "the contrastive loss compares at least 2 videos")
    refuse_existing(out_dir, force)
    train, text_ids, texts = training_texts(manifest, text, labeled, cfg.templates)  # text_ids aligned with train

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0, cpu0 = time.perf_counter(), time.process_time()
    text_emb = minilm_encoder().encode(texts)                              # (U, 384), frozen targets
    epochs, n_videos, batch_size = _epochs(train, data_spec, cfg, quiet)
    net_spec = dataclasses.replace(data_spec, size=min(cfg.net_size, data_spec.size))
    teacher = EmbeddedVLTeacher(net_spec, cfg.backbone, {"width": cfg.width, "dropout": 0.0}, input_spec=data_spec,
                                frames_in=cfg.frames_in)
    device = torch.device(cfg.device)
    teacher.to(device).train()
    if not quiet:
        log(f"[bold]vl pretrain[/bold]: {n_videos} videos with {text} ({len(texts)} distinct texts), "
            f"{cfg.backbone} x{cfg.width} at {net_spec.size}px -> {MINILM_NAME} ({MINILM_DIM}-d), {cfg.epochs} epochs")
    step = _align(teacher, epochs, n_videos, batch_size, text_ids, text_emb.to(device), cfg, gen, quiet)
    if not step.steps:
        raise no_step_error("vl pretraining", train, batch_size)
    train_seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    teacher.freeze()

    metrics: dict[str, Any] = {"train_seconds": round(train_seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
                               "torch_threads": torch.get_num_threads(), "steps": step.steps,
                               "final_loss": round(step.ema, 4),
                               "train_videos": n_videos, "text": text, "distinct_captions": len(texts),
                               "logit_scale": round(teacher.logit_scale, 3), "dataset": manifest.fingerprint()}
    metrics.update(_zeroshot(teacher, manifest, data_spec, cfg, quiet))
    record = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}
    record["text"] = text
    return write_teacher_folder(out_dir, type=TYPE, config={**teacher.config, "pretrain": record},
                                state_dict=teacher.state_dict(), data_spec=data_spec, metrics=metrics)


def _zeroshot(teacher, manifest, data_spec: DataSpec, cfg: VLPretrainConfig, quiet: bool) -> dict[str, Any]:
    """{"zeroshot": accuracy on the labeled test videos}, or {} when there are none."""
    from edgekd.teachers.vl_zeroshot import zeroshot_eval

    test = manifest.split("test")
    if not any(e.label is not None for e in test.entries):
        return {}
    zs = zeroshot_eval(teacher, test, data_spec, cfg.templates, num_workers=cfg.num_workers, quiet=quiet)
    return {"zeroshot": {k: zs[k] for k in ("top1", "top5", "chance", "videos", "templates")}}


def zeroshot_summary(metrics: dict[str, Any]) -> str:
    zs = metrics.get("zeroshot")
    if not zs:
        return "no labeled test videos: zero-shot accuracy not measured"
    return (f"zero-shot top-1 {zs['top1']:.1%} (chance {zs['chance']:.1%}), top-5 {zs['top5']:.1%} "
            f"on {zs['videos']} test videos")
