"""What every vision-language teacher shares: a text tower, zero-shot scoring, frame adaptation.

A vision-language (VL) teacher maps a video and a sentence into one joint space. `embed(x)` is the
unit-norm video embedding; `encode_text(texts)` the unit-norm text embeddings; zero-shot logits are
`logit_scale * cos(video, class prompt)` (Çelik et al. 2023, Sec. 4.2: "cosine distance as a
similarity metric", the class with the highest similarity wins).

Image-text models (CLIP) see a video as frames: `FramewiseVLTeacher` undoes the run's DataSpec
normalization, resizes each frame to the model's input size, applies the model's own mean/std,
embeds every frame and pools over time (parameter-free, as CLIP4Clip's "meanP").
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError, TeacherError
from edgekd.teachers.base import Teacher
from edgekd.teachers.text import DEFAULT_TEMPLATES, class_text_embeddings

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
POOLINGS = ("mean", "max")


class VisionLanguageTeacher(Teacher):
    """A teacher with a text tower. Subclasses implement `_embed` and `encode_text`."""

    logit_scale: float = 100.0  # CLIP's learned temperature, exp'ed; subclasses read it from the model

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """(N,) strings -> (N, D) unit-norm text embeddings."""
        raise NotImplementedError

    @torch.no_grad()
    def class_text_embeddings(self, class_names: Sequence[str],
                              templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
        """(C, D) prompt-ensembled class embeddings (see `text.class_text_embeddings`)."""
        return class_text_embeddings(self.encode_text, class_names, templates)

    def zeroshot_logits(self, x: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W), (C, D) -> (B, C): scaled cosine similarity of video and class prompts."""
        v = F.normalize(self.embed(x), dim=-1)
        return self.logit_scale * v @ class_emb.to(v.device, v.dtype).T


def model_frames(x: torch.Tensor, spec: DataSpec, image_size: int, mean: Sequence[float],
                 std: Sequence[float], num_frames: int | None = None) -> torch.Tensor:
    """Convert the student's batch into the frames an image model expects.

    x: (B, 3, T, H, W) normalized with spec.mean/std -> (B, T', 3, S, S) normalized with mean/std,
    S = image_size; T' = num_frames frames picked uniformly over T (all T when None). The shorter
    side is resized to S (bilinear, antialiased) and the centre S x S kept, as CLIP's preprocessing.
    """
    if x.dim() != 5 or x.shape[1] != 3:
        raise TeacherError(f"a video teacher takes (B, 3, T, H, W) clips, got shape {tuple(x.shape)}")
    B, _, T, H, W = x.shape
    if num_frames is not None and num_frames != T:
        idx = torch.linspace(0, T - 1, num_frames, device=x.device).round().long()
        x = x.index_select(2, idx)
        T = num_frames
    dev, dt = x.device, torch.float32
    spec_mean = torch.tensor(spec.mean, device=dev, dtype=dt).view(1, 3, 1, 1)
    spec_std = torch.tensor(spec.std, device=dev, dtype=dt).view(1, 3, 1, 1)
    frames = x.float().transpose(1, 2).reshape(B * T, 3, H, W) * spec_std + spec_mean  # [0, 1] pixels
    if (H, W) != (image_size, image_size):
        scale = image_size / min(H, W)
        h, w = max(image_size, round(H * scale)), max(image_size, round(W * scale))
        frames = F.interpolate(frames, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        top, left = (h - image_size) // 2, (w - image_size) // 2
        frames = frames[:, :, top:top + image_size, left:left + image_size]
    m = torch.tensor(mean, device=dev, dtype=dt).view(1, 3, 1, 1)
    s = torch.tensor(std, device=dev, dtype=dt).view(1, 3, 1, 1)
    frames = (frames - m) / s
    return frames.reshape(B, T, 3, image_size, image_size)


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown temporal pooling {pooling!r}", "choose one of: " + ", ".join(POOLINGS))
    return pooling


class FramewiseVLTeacher(VisionLanguageTeacher):
    """An image-text model applied to every frame; video embedding = pooled frame embeddings.

    Subclasses implement `_encode_images((N, 3, S, S)) -> (N, D)` and `_encode_text_raw(texts)`.
    embed_temporal gives the unit-norm per-frame embeddings (B, T', D); embed pools them over time:
    "mean" averages them (CLIP4Clip meanP), "max" takes the element-wise maximum; both re-normalize.
    """

    def __init__(self, data_spec: DataSpec, *, embed_dim: int, image_size: int, mean: Sequence[float],
                 std: Sequence[float], config: dict[str, Any], pooling: str = "mean",
                 num_frames: int | None = None, frame_batch: int = 256):
        super().__init__()
        self.data_spec = data_spec
        self.embed_dim = embed_dim
        self.image_size = image_size
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        self.pooling = check_pooling(pooling)
        self.num_frames = num_frames
        self.frame_batch = frame_batch
        self.config = {**config, "pooling": pooling, "num_frames": num_frames, "image_size": image_size,
                       "mean": list(self.mean), "std": list(self.std)}

    # -- to implement -------------------------------------------------------------------------
    def _encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _encode_text_raw(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _embed_temporal(self, x: torch.Tensor) -> torch.Tensor:
        frames = model_frames(x, self.data_spec, self.image_size, self.mean, self.std, self.num_frames)
        B, T = frames.shape[:2]
        flat = frames.reshape(B * T, *frames.shape[2:])                     # (B*T, 3, S, S)
        emb = torch.cat([self._encode_images(chunk) for chunk in flat.split(self.frame_batch)])
        return F.normalize(emb.float(), dim=-1).reshape(B, T, -1)          # (B, T, D)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        per_frame = self._embed_temporal(x)                                  # (B, T, D)
        pooled = per_frame.mean(1) if self.pooling == "mean" else per_frame.amax(1)
        return F.normalize(pooled, dim=-1)                                   # (B, D)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self._encode_text_raw(list(texts)).float(), dim=-1)
