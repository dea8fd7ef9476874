"""The TimeBalance teachers' objectives on one batch: L_I (Eq. 1) or L_D = L_D1 (Eq. 3) + L_D2 (supp. D.2).

    paper_objective_loss(...)     the equations read literally: one clip per segment, one augmentation
                                  each (twins for L_D1), the long clip over all n for L_D2
    authors_objective_loss(...)   wired as the authors' code: back-to-back clips, two augmentations of
                                  every clip and of the long clip, their loss weights
    make_global_clip / global_stride   TCLR's sparse "global" clip over the n local clips

The losses themselves are edgekd.teachers.losses; the augmentations edgekd.pretrain.augment.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.pretrain.augment import augment
from edgekd.teachers.losses import (authors_distinctive_loss, authors_invariant_loss, distinctive_loss,
                                    invariant_loss)
from edgekd.teachers.ssl_teacher import ProjectionHead


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


def paper_objective_loss(objective: str, backbone: nn.Module, proj: ProjectionHead, clips: torch.Tensor,
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


def authors_objective_loss(objective: str, backbone: nn.Module, proj: ProjectionHead, clips: torch.Tensor,
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
