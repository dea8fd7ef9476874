"""Every loss term the recipes compose, each the equation of a paper.

Papers (in the project's shared papers folder):
  VL  = Celik et al. 2023, "Feature distillation from vision-language model for semisupervised
        action classification" (Eqs. 1-3, Sec. 4.3).
  KD  = Camarena et al., "Boosting self-supervised video-based human action recognition through
        knowledge distillation" (Sec. 3, Hinton's temperature-scaled KL).
  TB  = Dave et al. 2023, "TimeBalance" (Eqs. 4, 6, 7, 8; Alg. 1).

Where an equation sums over clips we average over clips instead, so a loss weight does not depend
on the batch size. Shapes: B clips, C classes, D embedding width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.errors import ConfigError
from edgekd.teachers.losses import hinton_kd  # noqa: F401  (Camarena's KD term; PCL pretraining uses it too)


def make_projector(student_dim: int, teacher_dim: int, kind: str = "linear") -> nn.Module:
    """The map g_student of VL Eq. 1 from the student embedding (B, Ds) to the teacher width (B, Dt).

    VL Sec. 3.1: "our 3D-CNN is designed to produce feature output matching size with teacher backbone
    output". kind="linear" learns that map (trained with the student, dropped after distillation);
    kind="none" needs the widths to agree already.
    """
    if kind == "linear":
        return nn.Linear(student_dim, teacher_dim)
    if student_dim != teacher_dim:
        raise ConfigError(
            f"student width {student_dim} != teacher width {teacher_dim} and recipe.feature.projector is 'none'",
            "set recipe.feature.projector=linear to learn a projection, or pick a student of the teacher's width")
    return nn.Identity()


def feature_mse(projected: torch.Tensor, teacher_emb: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """VL Eq. 1: L_distillation = sum_Z ||g_student(x) - g_teacher(x)||^2, averaged over the clips.

    projected: (B, Dt) student embeddings after make_projector; teacher_emb: (B, Dt) frozen teacher
    embeddings. Squared L2 distance per clip (sum over Dt), mean over clips. normalize=True first
    scales both to unit length (then ||a - b||^2 = 2 - 2 cos(a, b)), matching how vision-language
    embeddings are compared; it keeps a randomly initialized projector from starting far off scale.
    """
    a, b = projected.float(), teacher_emb.float()
    if normalize:
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    return (a - b).pow(2).sum(dim=-1).mean()


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """VL Eq. 2 / TB Eq. 4: L_sup = -sum_c y_c log p_c, averaged over the labeled clips (B, C), (B,)."""
    return F.cross_entropy(logits.float(), labels)


def pseudo_label_ce(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                    threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """VL Eq. 3: cross-entropy on unlabeled clips against the teacher's arg-max pseudo-label.

    Only clips whose teacher softmax confidence max_c p_c >= threshold count ("the SoftMax output of
    the linear classifier is used as a confidence metric and no other hyperparameter or temperature
    scaling is used", VL Sec. 4.3). The sum runs over the confident clips and is divided by ALL
    unlabeled clips (as FixMatch does), so one confident clip does not get the weight of a batch.
    Returns (loss, fraction of clips that passed the threshold).
    """
    probs = teacher_logits.detach().float().softmax(dim=-1)          # (B, C)
    confidence, pseudo = probs.max(dim=-1)                           # (B,), (B,)
    keep = (confidence >= threshold).float()                         # (B,)
    per_clip = F.cross_entropy(student_logits.float(), pseudo, reduction="none")
    return (per_clip * keep).sum() / max(1, keep.numel()), keep.mean()


def mix_teachers(p_inv: torch.Tensor, p_dist: torch.Tensor, s: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """TB Eq. 7: p_T = s * p_I + (1 - s) * p_D, per video.

    p_inv, p_dist: (B, C) probabilities of the invariant and distinctive teachers; s: (B,) temporal
    similarity scores from Eq. 6 (edgekd.teachers.timebalance.temporal_similarity). clamp: s limited
    to [0, 1] so p_T stays a probability vector; the authors do not (edgekd.teachers.timebalance.blend).
    """
    from edgekd.teachers.timebalance import blend

    return blend(p_inv.float(), p_dist.float(), s.float(), clamp)


def timebalance_l2(student_logits: torch.Tensor, p_teacher: torch.Tensor) -> torch.Tensor:
    """TB Eq. 8: L_unsup = (p_T - p_S)^2, averaged over classes and clips (torch's MSELoss, as the
    authors' code computes it). p_S = softmax(student logits); applied to every clip, labeled videos
    included (TB Supp. D.1, Fig. 6).
    """
    p_s = student_logits.float().softmax(dim=-1)                     # (B, C)
    return (p_teacher.detach().float() - p_s).pow(2).mean()
