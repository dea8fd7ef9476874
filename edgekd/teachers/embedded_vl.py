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

`edgekd.pretrain.vl.pretrain_vl` trains it and writes a teacher folder (teacher.json + weights.pt)
that `load_teacher` reads; its zero-shot accuracy on the test split is measured and stored in teacher.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError
from edgekd.teachers.checkpoint_teacher import adapt_input
from edgekd.teachers.loading import load_weights_into, read_teacher_weights
from edgekd.teachers.text import MINILM_DIM, MINILM_NAME, minilm_encoder
from edgekd.teachers.vl_base import VisionLanguageTeacher
from edgekd.teachers.vl_loss import LogitScale

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
