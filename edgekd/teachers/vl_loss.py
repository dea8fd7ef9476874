"""The video-text alignment losses of the embedded vision-language teacher.

CLIP's symmetric InfoNCE (Radford et al. 2021, Fig. 3 pseudocode): for B matched (video, caption)
pairs with unit embeddings v_i and t_j, logits L_ij = s * <v_i, t_j> with a learned scale
s = exp(log_s) (initialised to 1/0.07, clamped at 100), and

    loss = ( CE(L, targets) + CE(L^T, targets) ) / 2,

cross-entropy over captions for every video and over videos for every caption.

A small caption vocabulary repeats captions inside a batch; CLIP's one-hot targets would then push
a video away from its own caption written for another video. Pairs whose captions are identical
(`groups`) are therefore all positives: each row's target spreads uniformly over them. With distinct
captions this is exactly CLIP's loss.

InfoNCE only asks a video to be nearer its own caption than the others in the batch, and in a batch
the cheapest cue is appearance ("red", "striped", "on a beige background"): the few words naming
the action barely matter. `caption_regression_loss` adds DeViSE's idea (Frome et al. 2013, the
paper's ref. 11): the video embedding regresses the whole caption embedding, 1 - cos(v, t), whose
action component (about 28 % of the variance of the synthetic captions' MiniLM embeddings) then has
to be predicted too. `alignment_loss` is the weighted sum the embedded teacher trains with.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.errors import TeacherError

INIT_TEMPERATURE = 0.07   # CLIP's initial temperature
MAX_LOGIT_SCALE = 100.0   # CLIP clamps the scale so the logits cannot blow up


def clip_targets(groups: torch.Tensor) -> torch.Tensor:
    """(B,) caption ids -> (B, B) row-stochastic targets: uniform over pairs with the same caption."""
    same = (groups[:, None] == groups[None, :]).float()
    return same / same.sum(1, keepdim=True)


def clip_contrastive_loss(video: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
                          groups: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE between (B, D) video and (B, D) text embeddings (normalized here).

    logit_scale: the scale s itself (not its log). groups: optional (B,) ids, equal for equal captions.
    """
    if video.dim() != 2 or video.shape != text.shape or video.shape[0] < 2:
        raise TeacherError(f"the contrastive loss needs matched (B>=2, D) batches, got {tuple(video.shape)} "
                           f"and {tuple(text.shape)}", "use a batch size of at least 2")
    v = F.normalize(video.float(), dim=-1)
    t = F.normalize(text.float(), dim=-1)
    logits = logit_scale * v @ t.T                                          # (B, B): video i vs caption j
    if groups is None:
        targets = torch.arange(len(v), device=v.device)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    targets = clip_targets(groups.to(v.device))                             # symmetric, so it serves both
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


class LogitScale(nn.Module):
    """CLIP's learnable temperature: stores log s, returns s clamped to MAX_LOGIT_SCALE."""

    def __init__(self, init_temperature: float = INIT_TEMPERATURE):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)


def caption_regression_loss(video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """mean over the batch of 1 - cos(v_i, t_i): the video embedding predicts its caption's embedding."""
    return (1 - F.cosine_similarity(video.float(), text.float(), dim=-1)).mean()


def alignment_loss(video: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, groups: torch.Tensor | None,
                   contrastive: float = 1.0, regress: float = 1.0) -> torch.Tensor:
    """contrastive * symmetric InfoNCE + regress * cosine regression (weights may be 0)."""
    loss = regress * caption_regression_loss(video, text) if regress else video.new_zeros(())
    if contrastive:
        loss = loss + contrastive * clip_contrastive_loss(video, text, logit_scale, groups)
    return loss
