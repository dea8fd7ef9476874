"""TimeBalance's two self-supervised teachers (Dave et al., CVPR 2023) and their reweighting.

    pretrain_ssl("invariant", ...)    backbone + projection head trained with L_I (Eq. 1)
    pretrain_ssl("distinctive", ...)  ... with L_D = L_D1 (Eq. 3) + L_D2 (supplement D.2)
    projected(teacher, emb)           Eq. 5's z: a clip embedding through the teacher's projection head
    temporal_similarity(z_I, z_D)     per-video score s (Eqs. 5-6) from both teachers' clip projections
    blend(p_I, p_D, s)                teacher target p_T = s p_I + (1 - s) p_D (Eq. 7)

Pretraining sees the split's UNLABELED videos only, n clips per video (random starts, one per
segment of the video, sorted in time), Adam at 1e-3 with a linear warm-up and a halving of the
learning rate on a loss plateau (supplement B.2). The teacher's embedding is the backbone's pooled
feature, and fine-tuning on the labeled split (`edgekd.teachers.finetune`) attaches the classifier.
The projection head stays with the teacher: Eq. 5 compares clips by z, which Sec. 3.1 defines as the
projection head's output. In that space the distinctive teacher was trained to tell a video's clips
apart, so s separates videos by their temporal structure; backbone features of both teachers are
alike for every clip of a video (measured on the synthetic set, mean s: compound 0.73 vs repetitive
0.93 on backbone features, 0.21 vs 0.75 on projections).

The teacher folder is edgekd's usual one (edgekd.teachers.loading: teacher.json + weights.pt, the
projection head's weights included under "projection."), so `load_teacher(folder)` reads it.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.checkpoint import DataSpec
from edgekd.errors import ConfigError, DataError, TeacherError
from edgekd.teachers.checkpoint_teacher import BackboneTeacher
from edgekd.teachers.embedded_vl import temporal_gradient
from edgekd.teachers.losses import (DEFAULT_TAU, authors_distinctive_loss, authors_invariant_loss,
                                    distinctive_loss, invariant_loss)
from edgekd.teachers.ssl_augment import authors_augment, resized_crop
from edgekd.teachers.vl_progress import progress_bar

OBJECTIVES = ("invariant", "distinctive")
FRAME_INPUTS = ("rgb", "diff")
# How TimeBalance is wired (recipe.timebalance.fidelity, EmbeddedConfig.ssl_fidelity):
#   "authors"  as the authors' released code runs it (docs/recipes.md lists the differences)
#   "paper"    the equations read literally, where the paper leaves the wiring open
FIDELITIES = ("authors", "paper")
TYPE = "ssl-timebalance"
LOADER = "edgekd.teachers.timebalance:from_folder"

Objective = Literal["invariant", "distinctive"]


# -- the network ---------------------------------------------------------------------------------

class ProjectionHead(nn.Module):
    """g(.) of supplement B.1.2: Linear(D, 512) + BN + ReLU + Linear(512, 128, bias=False) + BN.

    The paper's widths are for D = 2048; for a narrower backbone the hidden width is min(512, D) and
    the output min(128, hidden) (for D = 512 this is the authors' own r3d_18 head, 512-512-128).
    """

    def __init__(self, in_dim: int, hidden: int | None = None, out_dim: int | None = None):
        super().__init__()
        hidden = hidden or min(512, in_dim)
        out_dim = out_dim or min(128, hidden)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden, bias=True), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim, bias=False), nn.BatchNorm1d(out_dim),
        )
        self.out_dim = out_dim

    def forward(self, f: torch.Tensor) -> torch.Tensor:  # (..., D) -> (..., d)
        return self.net(f.reshape(-1, f.shape[-1])).reshape(*f.shape[:-1], self.out_dim)


class SSLBackbone(nn.Module):
    """A student network fed either the RGB clips (the paper) or their temporal gradients.

    frames_in="diff" feeds the differences of consecutive frames (edgekd.teachers.embedded_vl's
    temporal_gradient): static appearance cancels and motion remains, which a small network trained
    for a few CPU minutes needs to pick up motion at all. The objectives are the same either way.
    """

    def __init__(self, net: nn.Module, frames_in: str = "rgb"):
        super().__init__()
        if frames_in not in FRAME_INPUTS:
            raise ConfigError(f"unknown frames_in {frames_in!r}", "choose " + " or ".join(FRAME_INPUTS))
        self.net, self.frames_in, self.feature_dim = net, frames_in, net.feature_dim

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_gradient(x) if self.frames_in == "diff" else x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:   # (B, 3, T, H, W) -> (B, D)
        return self.net.forward_features(self._input(x))

    def forward_temporal(self, x: torch.Tensor) -> torch.Tensor:   # (B, 3, T, H, W) -> (B, T', D)
        return self.net.forward_temporal(self._input(x))


class SSLTeacher(BackboneTeacher):
    """A TimeBalance teacher: embed = backbone.forward_features, embed_temporal = forward_temporal."""

    def __init__(self, backbone: nn.Module, spec: DataSpec, config: dict[str, Any],
                 projection: ProjectionHead | None = None, head: nn.Module | None = None,
                 num_classes: int | None = None, input_spec: DataSpec | None = None):
        super().__init__(backbone, backbone.feature_dim, spec, config, head, num_classes, input_spec)
        # kept in the folder for further pretraining, not part of the teacher (nor its fingerprint)
        self.__dict__["projection"] = projection

    @property
    def objective(self) -> str:
        return self.config["objective"]

    def save(self, folder: str | Path, metrics: dict[str, Any] | None = None,
             pretrain: dict[str, Any] | None = None) -> Path:
        """Write a teacher folder (loading.py's format) atomically: a temp folder renamed into place."""
        from edgekd.teachers.loading import write_teacher_folder

        state = dict(self.state_dict())
        if self.projection is not None:
            state.update({f"projection.{k}": v for k, v in self.projection.state_dict().items()})
        config = {"objective": self.objective, "backbone": self.config["backbone"],
                  "backbone_kwargs": self.config["backbone_kwargs"], "frames_in": self.config["frames_in"],
                  "embed_dim": self.embed_dim,
                  "train_spec": self.spec.to_dict(), "num_classes": self.num_classes,
                  "head": None if self.head is None else _head_layout(self.head), "pretrain": pretrain or {}}
        with atomic_folder(Path(folder)) as tmp:
            write_teacher_folder(tmp, type=TYPE, config=config, state_dict=state, data_spec=self.spec,
                                 metrics={"fingerprint": self.fingerprint, **(metrics or {})}, loader=LOADER)
        return Path(folder)


def _head_layout(head: nn.Module) -> dict[str, Any]:
    if isinstance(head, nn.Linear):
        return {"type": "linear", "in": head.in_features, "out": head.out_features}
    if isinstance(head, nn.Sequential) and all(isinstance(m, (nn.Linear, nn.Dropout)) for m in head) \
            and sum(isinstance(m, nn.Linear) for m in head) == 1 and isinstance(head[-1], nn.Linear):
        return {"type": "dropout_linear", "in": head[-1].in_features, "out": head[-1].out_features,
                "dropout": next((m.p for m in head if isinstance(m, nn.Dropout)), 0.0)}
    raise TeacherError(f"cannot save a {type(head).__name__} head in an SSL teacher folder",
                       "fine-tune with a linear head")


def _build_head(layout: dict[str, Any]) -> nn.Module:
    if layout["type"] == "linear":
        return nn.Linear(layout["in"], layout["out"])
    return nn.Sequential(nn.Dropout(layout["dropout"]), nn.Linear(layout["in"], layout["out"]))


def build_ssl_teacher(objective: Objective, spec: DataSpec, backbone: str = "tiny3d",
                      backbone_kwargs: dict[str, Any] | None = None, input_spec: DataSpec | None = None,
                      frames_in: str = "rgb") -> SSLTeacher:
    """A freshly initialised (untrained) teacher: backbone from the student registry + projection head."""
    from edgekd.students import build_student

    if objective not in OBJECTIVES:
        from edgekd.registry import did_you_mean
        raise ConfigError(f"unknown SSL objective {objective!r}", did_you_mean(objective, list(OBJECTIVES)))
    kwargs = dict(backbone_kwargs or {})
    net = build_student(backbone, num_classes=max(1, spec.num_classes), frames=spec.frames,
                        size=spec.size, **kwargs)
    net.head = nn.Identity()  # its classifier is meaningless here; fine-tuning attaches the teacher's own
    config = {"type": TYPE, "objective": objective, "backbone": backbone, "backbone_kwargs": kwargs,
              "frames_in": frames_in}
    return SSLTeacher(SSLBackbone(net, frames_in), spec, config, ProjectionHead(net.feature_dim),
                      input_spec=input_spec)


def from_folder(folder: Path, meta: dict[str, Any], data_spec: DataSpec | None) -> SSLTeacher:
    """The loader named in an SSL teacher's teacher.json (see edgekd.teachers.loading)."""
    from edgekd.teachers.loading import load_weights_into, read_teacher_weights

    cfg = meta["config"]
    teacher = build_ssl_teacher(cfg["objective"], DataSpec.from_dict(cfg["train_spec"]), cfg["backbone"],
                                cfg["backbone_kwargs"], data_spec, cfg.get("frames_in", "rgb"))
    state = read_teacher_weights(folder, meta)
    proj = {k.removeprefix("projection."): v for k, v in state.items() if k.startswith("projection.")}
    state = {k: v for k, v in state.items() if not k.startswith("projection.")}
    if cfg.get("head"):
        teacher.attach_head(_build_head(cfg["head"]), cfg["num_classes"])
    load_weights_into(teacher, state, folder)
    if proj:
        load_weights_into(teacher.projection, proj, folder)
    teacher.source = str(folder)
    teacher.metrics = meta.get("metrics", {})
    return teacher.freeze()


def load_ssl_teacher(folder: str | Path, data_spec: DataSpec | None = None) -> SSLTeacher:
    """Rebuild a teacher written by `pretrain_ssl`; `data_spec` is the run's input (None: its own)."""
    from edgekd.teachers.loading import load_teacher_folder

    teacher = load_teacher_folder(folder, data_spec)
    if not isinstance(teacher, SSLTeacher):
        raise TeacherError(f"{folder} holds a {type(teacher).__name__}, not a TimeBalance SSL teacher",
                           "pass a folder written by `edgekd teacher pretrain --objective invariant|distinctive`")
    return teacher


class atomic_folder:
    """Context manager: build into a temp folder beside `path`, then move it into place in one rename."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.path.exists():  # keep the old one until the new one is in place
            old = self.path.with_name(f".{self.path.name}.old-{time.time_ns()}")
            self.path.rename(old)
        self.tmp.rename(self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# -- Eqs. 5-7: temporal-similarity reweighting -------------------------------------------------

def similarity_matrix(z: torch.Tensor) -> torch.Tensor:
    """Eq. 5: C = [cos(z_t1, z_t2)] for the n clips of each video. (B, n, D) -> (B, n, n)."""
    z = F.normalize(z.float(), dim=-1)
    return z @ z.transpose(1, 2)


def projected(teacher, emb: torch.Tensor) -> torch.Tensor:
    """Eq. 5's z for clip embeddings (..., D): g(emb) through the projection head the teacher was
    pretrained with (Sec. 3.1), or `emb` itself for a teacher without one (e.g. a supervised checkpoint).
    Cosines are scale-free, so the head's normalisation is left to `similarity_matrix`."""
    proj = getattr(teacher, "projection", None)
    if proj is None:
        return emb
    with torch.no_grad():
        return proj.to(emb.device).eval()(emb.float())


def temporal_similarity(z_inv: torch.Tensor, z_dist: torch.Tensor) -> torch.Tensor:
    """Eq. 6: s = (1 / 2n(n-1)) * sum over t1 != t2 of (C_I + C_D), one score per video.

    z_inv, z_dist: (B, n, D_I), (B, n, D_D) clip embeddings of the same n clips from the invariant
    and the distinctive teacher (widths may differ). Returns (B,): 1 when every clip of a video looks
    the same to both teachers, 0 when all are orthogonal.
    """
    if z_inv.dim() != 3 or z_dist.dim() != 3 or z_inv.shape[:2] != z_dist.shape[:2] or z_inv.shape[1] < 2:
        raise TeacherError(f"Eq. 6 needs (B, n>=2, D) embeddings of the same clips from both teachers, "
                           f"got {tuple(z_inv.shape)} and {tuple(z_dist.shape)}",
                           "embed at least 2 clips per video with each teacher")
    n = z_inv.shape[1]
    off = ~torch.eye(n, dtype=torch.bool, device=z_inv.device)
    total = (similarity_matrix(z_inv) + similarity_matrix(z_dist))[:, off].sum(-1)  # (B,)
    return total / (2 * n * (n - 1))


def blend(p_inv: torch.Tensor, p_dist: torch.Tensor, s: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """Eq. 7: p_T = s * p_I + (1 - s) * p_D per video. p: (B, C) or (B, n, C); s: (B,).

    clamp=True limits s to [0, 1] so the target stays a convex combination. s averages cosines of
    projection-head outputs, which end in a BatchNorm and can be negative; the authors do not clamp
    (clamp=False), so an s below 0 pushes the target past p_D, away from p_I.
    """
    s = (s.clamp(0, 1) if clamp else s).to(p_inv.dtype).reshape(-1, *([1] * (p_inv.dim() - 1)))
    return s * p_inv + (1 - s) * p_dist


# -- pretraining -------------------------------------------------------------------------------

def augment(x: torch.Tensor, hflip: bool, generator: torch.Generator | None = None,
            scale: tuple[float, float] = (0.4, 1.0), jitter: float = 0.4, grayscale_p: float = 0.2) -> torch.Tensor:
    """One random resized crop (+ flip), saturation/contrast/brightness and grayscale draw per clip.

    The draw is the same for all frames of a clip, so motion stays intact.

    x: (N, 3, T, H, W) normalized clips -> same shape. Vectorized (one affine grid per clip), so it
    costs little next to the network; the twins of L_D1 (Eq. 3) are two calls on the same clips.
    """
    N = x.shape[0]
    dev = x.device
    rand = lambda *s: torch.rand(*s, generator=generator).to(dev)  # noqa: E731
    side = (scale[0] + (scale[1] - scale[0]) * rand(N)).sqrt()     # crop side as a fraction of the frame
    out = resized_crop(x, side, hflip, generator)
    luma = out.mean(dim=1, keepdim=True)
    saturation = (1 + jitter * (2 * rand(N) - 1)).view(N, 1, 1, 1, 1)
    saturation = torch.where((rand(N) < grayscale_p).view(N, 1, 1, 1, 1), 0.0, saturation)  # grayscale
    out = luma + (out - luma) * saturation
    contrast = (1 + jitter * (2 * rand(N) - 1)).view(N, 1, 1, 1, 1)
    brightness = (jitter * (2 * rand(N) - 1)).view(N, 1, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3, 4), keepdim=True)
    return (out - mean) * contrast + mean + brightness


class _MemoryClips:
    """The unlabeled videos decoded once into memory; each epoch draws n clips per video from them.

    Clip starts follow the data layer's sampling (edgekd.data.sampling), as ClipDataset(mode="train",
    clips_per_video=n, sampling=...) does: "random" = one random start in each of n equal segments,
    sorted in time; "window" = n back-to-back clips in one random window (the authors'). Videos are not
    decoded again each epoch: contrastive pretraining runs many epochs.
    """

    def __init__(self, videos, spec: DataSpec, quiet: bool, sampling: str = "random"):
        from edgekd.teachers.vl_clipbank import ClipBank

        self.bank, self.spec, self.sampling = ClipBank(videos, spec, quiet=quiet), spec, sampling

    def __len__(self) -> int:
        return len(self.bank)

    def _clips(self, k: int, n: int, gen: torch.Generator) -> torch.Tensor:
        from edgekd.data.sampling import clip_indices, random_starts, window_starts

        spec, video = self.spec, self.bank.videos[k]                 # uint8 (frames, H, W, 3)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (), generator=gen)))
        draw = window_starts if self.sampling == "window" else random_starts
        starts = draw(len(video), spec.frames, spec.frame_stride, n, rng)
        idx = torch.from_numpy(clip_indices(starts, spec.frames, spec.frame_stride, len(video)))
        frames = video[idx]                                          # (n, T, H, W, 3)
        h, w = frames.shape[2:4]
        top, left = (h - spec.size) // 2, (w - spec.size) // 2      # the bank's short side is spec.size
        frames = frames[:, :, top:top + spec.size, left:left + spec.size]
        x = frames.permute(0, 4, 1, 2, 3).float().div_(255)         # (n, 3, T, S, S)
        return (x - self.bank.mean) / self.bank.std

    def epoch(self, batch_size: int, n: int, gen: torch.Generator):
        order = torch.randperm(len(self.bank), generator=gen).tolist()
        for b in range(len(order) // batch_size):
            yield torch.stack([self._clips(k, n, gen) for k in order[b * batch_size:(b + 1) * batch_size]])


class _StreamedClips:
    """Datasets too large to hold: ClipDataset(clips_per_video=n) with random starts, decoded each epoch."""

    def __init__(self, videos, spec: DataSpec, n: int, batch_size: int, num_workers: int, seed: int,
                 sampling: str = "random"):
        from edgekd.data.dataset import ClipDataset, make_loader

        # centre crop only: `augment` crops and jitters the batch (far cheaper than per-frame transforms)
        self.dataset = ClipDataset(videos, spec, mode="eval", sampling=sampling, clips_per_video=n)
        self.loader = make_loader(self.dataset, batch_size, shuffle=True, num_workers=num_workers,
                                  drop_last=True, seed=seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def epoch(self, batch_size: int, n: int, gen: torch.Generator):
        for batch in self.loader:
            yield batch["video"]


def global_stride(backbone: nn.Module, n: int, frames: int, size: int) -> int:
    """The largest stride over the n concatenated clips whose global clip still has >= n feature steps."""
    with torch.no_grad():
        was = backbone.training
        backbone.eval()
        try:
            for stride in range(n, 0, -1):
                t = math.ceil(n * frames / stride)
                probe = torch.zeros(1, 3, t, size, size, device=next(backbone.parameters()).device)
                steps = backbone.forward_temporal(probe).shape[1]
                if steps >= n:
                    return stride
        finally:
            backbone.train(was)
    return 1


def make_global_clip(clips: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, n, 3, T, H, W) clips sorted in time -> (B, 3, ceil(nT/stride), H, W) long clip over all n.

    Frames of clip t land in the t-th n-th of the long clip, so its t-th temporal feature slice is
    aligned with local clip t (supplement D.2 / TCLR's sparse "global" clip).
    """
    B, n, C, T, H, W = clips.shape
    long = clips.permute(0, 2, 1, 3, 4, 5).reshape(B, C, n * T, H, W)
    return long[:, :, ::stride]


def _objective_loss(objective: str, backbone: nn.Module, proj: ProjectionHead, clips: torch.Tensor,
                    views: dict[str, Any], stride: int, tau: float, gen: torch.Generator) -> torch.Tensor:
    """One batch of (B, n, 3, T, H, W) clips -> L_I or L_D. `views`: keyword arguments of `augment`."""
    B, n = clips.shape[:2]
    flat = clips.flatten(0, 1)                                              # (B*n, 3, T, H, W)
    if objective == "invariant":
        z = proj(backbone.forward_features(augment(flat, generator=gen, **views)))  # (B*n, d)
        return invariant_loss(z.reshape(B, n, -1), tau)
    twins = torch.cat([augment(flat, generator=gen, **views), augment(flat, generator=gen, **views)])
    z = proj(backbone.forward_features(twins)).reshape(2, B, n, -1)        # clips and their twins
    long = augment(make_global_clip(clips, stride), generator=gen, **views)
    steps = backbone.forward_temporal(long)                                 # (B, T', D)
    slices = F.adaptive_avg_pool1d(steps.transpose(1, 2), n).transpose(1, 2)  # (B, n, D)
    return distinctive_loss(z[0], z[1], proj(slices), tau)


def _authors_objective_loss(objective: str, backbone: nn.Module, proj: ProjectionHead, clips: torch.Tensor,
                            aug, stride: int, tau: float) -> torch.Tensor:
    """L_I or L_D wired as the authors train them (edgekd.teachers.losses.authors_*), on (B, n, 3, T, H, W)
    back-to-back clips: two augmentations of every clip and two of the long clip over their window.
    `aug`: clips (N, 3, T, H, W) -> one random augmentation each."""
    B, n = clips.shape[:2]
    flat = clips.flatten(0, 1)                                              # (B*n, 3, T, H, W)
    long = make_global_clip(clips, stride)                                  # (B, 3, T', H, W)
    if objective == "invariant":
        views = proj(backbone.forward_features(torch.cat([aug(flat), aug(flat)])))  # (2*B*n, d)
        views = views.reshape(2, B, n, -1).transpose(0, 1).reshape(B, 2 * n, -1)  # (B, 2n, d)
        z_long = proj(backbone.forward_features(torch.cat([aug(long), aug(long)])))
        return authors_invariant_loss(views, z_long.reshape(2, B, -1).transpose(0, 1), tau)
    z = proj(backbone.forward_features(torch.cat([aug(flat), aug(flat)]))).reshape(2, B, n, -1)
    steps = backbone.forward_temporal(torch.cat([aug(long), aug(long)]))   # (2B, T', D)
    slices = F.adaptive_avg_pool1d(steps.transpose(1, 2), n).transpose(1, 2)  # (2B, n, D)
    return authors_distinctive_loss(z[0], z[1], proj(slices).reshape(2, B, n, -1), tau)


def no_step_error(what: str, videos, batch_size: int) -> DataError:
    """`what` (a training loop) took no optimizer step on `videos` (a Manifest): say how many decode."""
    ok = sum(str(e.path) not in videos.skipped for e in videos.entries)
    short = f", fewer than one batch of {batch_size}" if ok else ""
    return DataError(f"{what} took no optimizer step: {ok} of its {len(videos.entries)} videos decode{short}",
                     "fix or remove the broken videos (`edgekd data check`), or use more videos")


def _unlabeled(manifest, split) -> Any:
    """The split's unlabeled training videos (labels hidden) as a Manifest."""
    if isinstance(split, (str, Path)):
        from edgekd.data.splits import SemiSplit

        split = SemiSplit.load(split)
    _, unlabeled = split.apply(manifest)
    unlabeled = unlabeled.subset(e for e in unlabeled.entries if e.split == "train")
    if len(unlabeled.entries) < 2:
        raise TeacherError(f"the split leaves {len(unlabeled.entries)} unlabeled training video(s); "
                           "self-supervised pretraining needs at least 2",
                           "use a split with a smaller labeled fraction, or more videos")
    return unlabeled


def pretrain_ssl(objective: Objective, manifest, split, data_spec: DataSpec, out_dir: str | Path, *,
                 backbone: str = "tiny3d", backbone_kwargs: dict[str, Any] | None = None,
                 epochs: int = 30, batch_size: int = 16, lr: float = 1e-3, warmup_epochs: int = 10,
                 clips: int = 4, tau: float = DEFAULT_TAU, patience: int = 5, seed: int = 0,
                 frames_in: str = "rgb", fidelity: str = "authors", jitter: float | None = None,
                 grayscale_p: float | None = None,
                 data: str = "auto", max_memory_mb: float = 2048, num_workers: int = 2, device: str = "cpu",
                 force: bool = False, progress: bool = True) -> Path:
    """Self-supervised pretraining of one TimeBalance teacher on the split's unlabeled videos.

    objective "invariant" minimises L_I (Eq. 1), "distinctive" L_D = L_D1 (Eq. 3) + L_D2 (supp. D.2).
    Each video gives `clips` clips (n in the paper). Adam (lr, betas 0.9/0.999), the learning rate
    rising linearly over `warmup_epochs` (capped at half the run), then halved when the epoch loss has
    not improved for `patience` epochs (supplement B.2). `data`: "memory" decodes the videos once and
    samples clips from memory, "stream" decodes clips every epoch (ClipDataset), "auto" picks memory
    when the estimate fits `max_memory_mb`. `jitter`/`grayscale_p` override the dataset's colour
    augmentation strength (AugmentConfig). `frames_in="diff"` feeds the backbone temporal gradients
    instead of frames (SSLBackbone). `fidelity="authors"` wires it as the authors' code does: n
    back-to-back clips in one random window, the long clip over that window, two augmentations of
    every clip and of the long clip (their augmentation, edgekd.teachers.ssl_augment; `jitter` and
    `grayscale_p` then do not apply), and their loss weights (edgekd.teachers.losses.authors_*).
    "paper" samples one clip per segment of the video and reads the equations literally. Writes the teacher folder `out_dir` and returns it; an
    existing folder is replaced only with `force=True`.
    """
    from edgekd.data.transforms import AugmentConfig
    from edgekd.teachers.vl_clipbank import ClipBank

    out_dir = Path(out_dir)
    if objective not in OBJECTIVES:
        from edgekd.registry import did_you_mean
        raise ConfigError(f"unknown SSL objective {objective!r}", did_you_mean(objective, list(OBJECTIVES)))
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise TeacherError(f"{out_dir} already exists", "pick another output folder or pass --force to replace it")
    if clips < 2 or epochs < 1 or batch_size < 2:
        raise ConfigError(f"pretraining needs clips >= 2, epochs >= 1, batch_size >= 2 "
                          f"(got {clips}, {epochs}, {batch_size})", "raise the value named")
    if data not in ("auto", "memory", "stream"):
        raise ConfigError(f"unknown data mode {data!r}", "choose auto, memory or stream")
    if fidelity not in FIDELITIES:
        from edgekd.registry import did_you_mean
        raise ConfigError(f"unknown TimeBalance fidelity {fidelity!r}", did_you_mean(fidelity, list(FIDELITIES)))
    sampling = "window" if fidelity == "authors" else "random"

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    videos = _unlabeled(manifest, split)
    aug = AugmentConfig.for_manifest(manifest.defaults)              # hflip off where direction is the label
    if data == "memory" or (data == "auto" and ClipBank.estimate_mb(videos, data_spec) <= max_memory_mb):
        source = _MemoryClips(videos, data_spec, quiet=not progress, sampling=sampling)
        batch_size = min(batch_size, len(source))                   # the videos that decoded: >= 1 batch per epoch
    else:
        batch_size = min(batch_size, len(videos.entries))
        source = _StreamedClips(videos, data_spec, clips, batch_size, num_workers, seed, sampling)
    teacher = build_ssl_teacher(objective, data_spec, backbone, backbone_kwargs, frames_in=frames_in)
    net, proj = teacher.backbone.to(device), teacher.projection.to(device)
    stride = global_stride(net, clips, data_spec.frames, data_spec.size) \
        if objective == "distinctive" or fidelity == "authors" else 1
    steps_per_epoch = max(1, len(source) // batch_size)
    warmup_steps = max(1, min(warmup_epochs, max(1, epochs // 2)) * steps_per_epoch)
    views = dict(hflip=aug.hflip, scale=tuple(aug.crop_scale), jitter=aug.jitter if jitter is None else jitter,
                 grayscale_p=aug.grayscale_p if grayscale_p is None else grayscale_p)

    authors_aug = lambda c: authors_augment(c, data_spec.mean, data_spec.std, aug.hflip, gen)  # noqa: E731
    params = list(net.parameters()) + list(proj.parameters())
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=patience)
    net.train(), proj.train()
    for p in params:
        p.requires_grad_(True)

    history: list[float] = []
    step, start = 0, time.perf_counter()
    with progress_bar(f"pretrain {objective}", epochs * steps_per_epoch * batch_size, "videos",
                      quiet=not progress) as advance:
        for epoch in range(epochs):
            total, count = 0.0, 0
            for x in source.epoch(batch_size, clips, gen):
                x = x.to(device, non_blocking=True)                         # (B, n, 3, T, H, W)
                if x.shape[0] < 2:
                    continue  # a batch shrunk by undecodable videos gives L_I no negatives
                if step < warmup_steps:
                    for g in opt.param_groups:
                        g["lr"] = lr * (step + 1) / warmup_steps
                if fidelity == "authors":
                    loss = _authors_objective_loss(objective, net, proj, x, authors_aug, stride, tau)
                else:
                    loss = _objective_loss(objective, net, proj, x, views, stride, tau, gen)
                if not torch.isfinite(loss):
                    from edgekd.errors import TrainingDiverged
                    raise TrainingDiverged(f"{objective} pretraining loss became {loss.item()} at epoch {epoch + 1}",
                                           "lower --lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, count, step = total + loss.item() * x.shape[0], count + x.shape[0], step + 1
                advance(x.shape[0], f"epoch {epoch + 1}/{epochs} loss {total / count:.3f}")
            if not step:  # streamed videos failed until no batch of 2 was left
                raise no_step_error(f"{objective} pretraining", videos, batch_size)
            history.append(total / max(count, 1))
            if step >= warmup_steps:
                plateau.step(history[-1])

    teacher.cpu().freeze()
    proj.cpu()
    if fidelity == "authors":
        views = {"authors": True, "hflip": aug.hflip}
    pretrain = {"frames_in": frames_in, "fidelity": fidelity, "epochs": epochs, "batch_size": batch_size, "lr": lr, "warmup_epochs": warmup_epochs,
                "clips": clips, "tau": tau, "seed": seed, "dataset": manifest.fingerprint(),
                "augment": {k: list(v) if isinstance(v, tuple) else v for k, v in views.items()}}
    metrics = {"pretrain_seconds": round(time.perf_counter() - start, 1), "unlabeled_videos": len(source),
               "steps": step, "loss_per_epoch": [round(v, 4) for v in history]}
    return teacher.save(out_dir, metrics, pretrain)
