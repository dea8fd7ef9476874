"""The embedded vision-language teacher: a small 3D CNN aligned to a real, frozen sentence encoder.

No pretrained CLIP weights can be fetched here, so edgekd trains its own video-text model the way
CLIP was trained (Radford et al. 2021), at toy scale: a video tower (a student family, by default
tiny3d) and a linear projection into the 384-d space of the frozen all-MiniLM-L6-v2 text encoder,
trained on (clip, caption) pairs of the training videos with CLIP's symmetric InfoNCE and a learned
temperature plus a cosine regression onto the caption embedding (vl_loss.py). Captions describe
what happens ("a red striped circle moves right, then stops on a dark grey background"); they are
not labels, and every training video contributes, labeled or not.

The tower sees the differences of consecutive frames (`frames_in="diff"`): static backgrounds cancel
and motion stands out, which a small network trained for a few CPU minutes needs (on the synthetic
motion classes, tiny3d learns from frame differences within a few epochs and, in the same budget,
not at all from raw frames).

Zero-shot classification needs no label at all: cosine similarity between a video embedding and the
MiniLM embeddings of class-name prompts ("a video of move right then stop.").

    x (B, 3, T, H, W) run-normalized -> resize to the tower's size -> frame differences
      -> tower.forward_features (B, F) -> Linear (B, 384) -> L2 normalize              embed
      -> tower.forward_temporal (B, T', F) -> Linear -> L2 normalize                    embed_temporal

`pretrain_vl` trains it and writes a teacher folder (teacher.json + weights.pt) that `load_teacher`
reads; its zero-shot accuracy on the test split is measured and stored in teacher.json.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.checkpoint import DataSpec
from edgekd.errors import ConfigError, DataError, TrainingDiverged
from edgekd.teachers.checkpoint_teacher import adapt_input
from edgekd.teachers.loading import (load_weights_into, read_teacher_weights, refuse_existing,
                                     write_teacher_folder)
from edgekd.teachers.text import DEFAULT_TEMPLATES, MINILM_DIM, MINILM_NAME, minilm_encoder
from edgekd.teachers.vl_base import VisionLanguageTeacher
from edgekd.teachers.vl_loss import LogitScale, alignment_loss
from edgekd.teachers.vl_progress import log, progress_bar

TYPE = "embedded-vl"
FRAME_INPUTS = ("diff", "rgb")


def temporal_gradient(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> differences of consecutive frames, the last one repeated to keep T frames.

    The static background cancels and what moves remains, so a small network picks up motion within
    a few epochs where raw frames take far longer (the temporal gradients of Xiao et al. 2022).
    """
    d = x[:, :, 1:] - x[:, :, :-1]
    return torch.cat([d, d[:, :, -1:]], dim=2)


class EmbeddedVLTeacher(VisionLanguageTeacher):
    """Video tower + projection into the MiniLM text space; text = the frozen MiniLM encoder.

    train_spec: the clips it was trained on; input_spec: the run's clips (None = the same), converted
    to train_spec (re-normalized, resized) before the network sees them.
    """

    def __init__(self, train_spec: DataSpec, backbone: str = "tiny3d", backbone_kwargs: dict | None = None,
                 input_spec: DataSpec | None = None, frames_in: str = "diff"):
        from edgekd.students import build_student

        super().__init__()
        backbone_kwargs = dict(backbone_kwargs or {})
        self.video = build_student(backbone, num_classes=1, frames=train_spec.frames, size=train_spec.size,
                                   **backbone_kwargs)
        self.video.head = nn.Identity()                       # the tower embeds; heads come from finetune
        self.proj = nn.Linear(self.video.feature_dim, MINILM_DIM)
        self.scale = LogitScale()
        self.embed_dim = MINILM_DIM
        if frames_in not in FRAME_INPUTS:
            raise ConfigError(f"unknown tower input {frames_in!r}", "choose " + " or ".join(FRAME_INPUTS))
        self.train_spec, self.input_spec, self.frames_in = train_spec, input_spec, frames_in
        self.config = {"type": TYPE, "backbone": backbone, "backbone_kwargs": backbone_kwargs,
                       "frames_in": frames_in, "embed_dim": MINILM_DIM, "text_encoder": MINILM_NAME,
                       "train_spec": train_spec.to_dict()}

    @property
    def logit_scale(self) -> float:  # the learned CLIP temperature, exp'ed
        return float(self.scale().item())

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        x = adapt_input(x, self.input_spec, self.train_spec)                  # (B, 3, T, S, S) at the tower's size
        return temporal_gradient(x) if self.frames_in == "diff" else x

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.video.forward_features(self._input(x))), dim=-1)      # (B, 384)

    def _embed_temporal(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(self.video.forward_temporal(self._input(x))), dim=-1)     # (B, T', 384)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return minilm_encoder().encode(list(texts))


def from_folder(folder: Path, meta: dict[str, Any], data_spec: DataSpec | None) -> EmbeddedVLTeacher:
    """Rebuild the teacher a `pretrain_vl` folder describes (the loader named in teacher.json)."""
    cfg = meta["config"]
    teacher = EmbeddedVLTeacher(DataSpec.from_dict(cfg["train_spec"]), cfg["backbone"], cfg["backbone_kwargs"],
                                input_spec=data_spec, frames_in=cfg.get("frames_in", "rgb"))
    load_weights_into(teacher, read_teacher_weights(folder, meta), folder)
    teacher.source = str(folder)
    teacher.metrics = meta.get("metrics", {})
    return teacher.freeze()


# -- training ---------------------------------------------------------------------------------------

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


def pretrain_vl(manifest, data_spec: DataSpec, out_dir: str | Path, cfg: VLPretrainConfig | None = None, *,
                text: str = "captions", labeled=None, force: bool = False, quiet: bool = False, log=log,
                **overrides) -> Path:
    """Align a video tower to MiniLM on the training videos' texts; write a teacher folder.

    manifest: the whole dataset. text: "captions" (its captioned "train" videos, labeled or not) or
    "prompts" (the `labeled` videos with class-name prompts; see training_texts). Its labeled "test"
    videos measure the zero-shot accuracy stored in teacher.json.
    """
    from edgekd.teachers.vl_clipbank import ClipBank, loader_batches
    from edgekd.teachers.vl_zeroshot import zeroshot_eval

    cfg = dataclasses.replace(cfg or VLPretrainConfig(), **overrides)
    if cfg.epochs < 1 or cfg.batch_size < 2 or cfg.net_size < 8:
        raise ConfigError(f"vl pretraining needs epochs >= 1, batch_size >= 2 and net_size >= 8 (got {cfg.epochs}, "
                          f"{cfg.batch_size}, {cfg.net_size})", "the contrastive loss compares at least 2 videos")
    refuse_existing(out_dir, force)
    train, cap_ids, captions = training_texts(manifest, text, labeled, cfg.templates)  # cap_ids aligned with train

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0, cpu0 = time.perf_counter(), time.process_time()
    caption_emb = minilm_encoder().encode(captions)                        # (U, 384), frozen targets
    if ClipBank.estimate_mb(train, data_spec) <= cfg.max_bank_mb:
        bank = ClipBank(train, data_spec, quiet=quiet)
        n_videos = len(bank)                                   # the videos that decoded: >= 1 batch per epoch
        batch_size = min(cfg.batch_size, n_videos)
        epoch_batches = lambda g: bank.batches(batch_size, g)  # noqa: E731
    else:  # too large to hold: stream clips (a batch shrinks by the videos that fail)
        n_videos = len(train)
        batch_size = min(cfg.batch_size, n_videos)
        epoch_batches = loader_batches(train, data_spec, batch_size, cfg.num_workers, cfg.seed)

    net_spec = dataclasses.replace(data_spec, size=min(cfg.net_size, data_spec.size))
    teacher = EmbeddedVLTeacher(net_spec, cfg.backbone, {"width": cfg.width, "dropout": 0.0}, input_spec=data_spec,
                                frames_in=cfg.frames_in)
    device = torch.device(cfg.device)
    teacher.to(device).train()
    caption_emb = caption_emb.to(device)
    decay = [p for p in teacher.parameters() if p.dim() > 1]
    no_decay = [p for p in teacher.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    steps_per_epoch = n_videos // batch_size
    total = cfg.epochs * steps_per_epoch
    if not quiet:
        log(f"[bold]vl pretrain[/bold]: {n_videos} videos with {text} ({len(captions)} distinct texts), "
            f"{cfg.backbone} x{cfg.width} at {net_spec.size}px -> {MINILM_NAME} ({MINILM_DIM}-d), {cfg.epochs} epochs")
    step, loss_ema = 0, None
    with progress_bar("vl pretrain", total * batch_size, unit="clips", quiet=quiet) as advance:
        for epoch in range(cfg.epochs):
            for x, idx in epoch_batches(gen):
                x = x.to(device, non_blocking=True)
                for g in opt.param_groups:
                    g["lr"] = _lr_at(step, total, cfg.warmup_epochs * steps_per_epoch, cfg.lr)
                groups = cap_ids[idx]
                loss = alignment_loss(teacher.embed(x), caption_emb[groups], teacher.scale(), groups,
                                      cfg.contrastive, cfg.regress)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(f"vl pretraining diverged at step {step} (loss {loss.item()})",
                                           "lower the learning rate (lr=...)")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                loss_ema = loss.item() if loss_ema is None else 0.9 * loss_ema + 0.1 * loss.item()
                advance(len(x), f"epoch {epoch + 1}/{cfg.epochs} loss {loss_ema:.3f}")
            if not step:  # every streamed batch failed to decode
                from edgekd.teachers.timebalance import no_step_error

                raise no_step_error("vl pretraining", train, batch_size)
    train_seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    teacher.freeze()

    metrics: dict[str, Any] = {"train_seconds": round(train_seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
                               "torch_threads": torch.get_num_threads(), "steps": step,
                               "final_loss": round(loss_ema, 4),
                               "train_videos": n_videos, "text": text, "distinct_captions": len(captions),
                               "logit_scale": round(teacher.logit_scale, 3), "dataset": manifest.fingerprint()}
    test = manifest.split("test")
    if any(e.label is not None for e in test.entries):
        zs = zeroshot_eval(teacher, test, data_spec, cfg.templates, num_workers=cfg.num_workers, quiet=quiet)
        metrics["zeroshot"] = {k: zs[k] for k in ("top1", "top5", "chance", "videos", "templates")}
    record = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}
    record["text"] = text
    return write_teacher_folder(out_dir, type=TYPE, config={**teacher.config, "pretrain": record},
                                state_dict=teacher.state_dict(), data_spec=data_spec, metrics=metrics)


def zeroshot_summary(metrics: dict[str, Any]) -> str:
    zs = metrics.get("zeroshot")
    if not zs:
        return "no labeled test videos: zero-shot accuracy not measured"
    return (f"zero-shot top-1 {zs['top1']:.1%} (chance {zs['chance']:.1%}), top-5 {zs['top5']:.1%} "
            f"on {zs['videos']} test videos")


