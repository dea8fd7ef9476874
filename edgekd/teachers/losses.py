"""The TimeBalance contrastive losses (Dave et al., CVPR 2023) for the self-supervised teachers.

Notation as in the paper: a video i gives n clips x_t (t = clip position), each projected by the
backbone f and the head g to z_t; h(u1, u2) = exp(cos(u1, u2) / tau) with tau = 0.1.

Every loss is a softmax cross-entropy whose logits are cos / tau, so the positive's h appears in the
numerator and the denominator lists the equation's negatives next to it. The equations write the
denominator as the negatives alone; the authors' code (the SimCLR NT-Xent of TCLR, which TimeBalance
reuses) also keeps the positive there, which bounds each term below by 0. We follow the code, and
average over anchors where the equations sum, so the scale does not grow with n or the batch.

`hinton_kd` (Camarena Sec. 3) is here too: PCL pretraining (edgekd.pretrain.pcl) and the kd recipe
(edgekd.distill) both train a student on a frozen teacher's softened outputs with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekd.errors import TeacherError

DEFAULT_TAU = 0.1


def _check(name: str, z: torch.Tensor, min_batch: int = 1) -> None:
    if z.dim() != 3 or z.shape[1] < 2 or z.shape[0] < min_batch:
        raise TeacherError(f"{name} needs (B>={min_batch}, n>=2, d) projections, got shape {tuple(z.shape)}",
                           "sample at least 2 clips per video (clips_per_video) and a larger batch")


def invariant_loss(z: torch.Tensor, tau: float = DEFAULT_TAU) -> torch.Tensor:
    """Temporally-invariant loss L_I, Eq. 1: clips of one video attract, clips of other videos repel.

    z: (B, n, d) projections of n clips per video. For every video i and ordered pair t1 != t2,
    anchor z_t1^(i) and positive z_t2^(i); the denominator holds h(z_t1^(i), z_t1^(j)) for j != i
    (the indicator 1[j != i] only removes the anchor itself) and h(z_t1^(i), z_t2^(j)) for every j
    (j = i being the positive). Returns the mean over the B*n*(n-1) anchor/positive pairs.
    """
    _check("invariant_loss (Eq. 1)", z, min_batch=2)
    B, n, _ = z.shape
    zt = F.normalize(z.float(), dim=-1).transpose(0, 1)                  # (n, B, d)
    sim = torch.einsum("tid,ujd->tuij", zt, zt) / tau                   # (n, n, B, B): clip t of i vs clip u of j
    same = sim.diagonal(dim1=0, dim2=1).permute(2, 0, 1)                # (n, B, B): sim[t1, t1]
    eye = torch.eye(B, dtype=torch.bool, device=z.device)
    same = same.masked_fill(eye, float("-inf"))                          # drop h(z_t1^i, z_t1^i)
    logits = torch.cat([sim, same.unsqueeze(1).expand(n, n, B, B)], -1)  # (n, n, B, 2B): [t2 clips | t1 clips]
    pairs = ~torch.eye(n, dtype=torch.bool, device=z.device)            # t1 != t2
    logits = logits[pairs].reshape(-1, 2 * B)                            # (n(n-1)B, 2B)
    target = torch.arange(B, device=z.device).repeat(n * (n - 1))        # positive z_t2^(i) sits at column i
    return F.cross_entropy(logits, target)


def distinctive_pooled_loss(z: torch.Tensor, z_twin: torch.Tensor, tau: float = DEFAULT_TAU) -> torch.Tensor:
    """Temporally-distinctive loss on pooled clip features L_D1, Eq. 3.

    z, z_twin: (B, n, d) projections of the n clips of each video and of their randomly augmented
    twins. Anchor z_t1, positive its twin z~_t1 (same timestamp); negatives are the other timestamps of
    the SAME video in both views, z_t2 and z~_t2 for t2 != t1 (other videos play no part). As in the
    authors' NT-Xent, both views serve as anchors; returns the mean over the 2*B*n anchors.
    """
    _check("distinctive_pooled_loss (Eq. 3)", z)
    if z_twin.shape != z.shape:
        raise TeacherError(f"L_D1 (Eq. 3) needs twins shaped like the clips: {tuple(z_twin.shape)} vs {tuple(z.shape)}")
    B, n, _ = z.shape
    v = F.normalize(torch.cat([z, z_twin], 1).float(), dim=-1)          # (B, 2n, d): [clips | twins]
    sim = v @ v.transpose(1, 2) / tau                                    # (B, 2n, 2n)
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))                            # no self-similarity
    target = (torch.arange(2 * n, device=z.device) + n) % (2 * n)        # clip t <-> twin t
    return F.cross_entropy(sim.reshape(B * 2 * n, 2 * n), target.repeat(B))


def distinctive_unpooled_loss(local: torch.Tensor, global_slices: torch.Tensor,
                              tau: float = DEFAULT_TAU) -> torch.Tensor:
    """Temporally-distinctive loss on unpooled features L_D2, supplement D.2 (TCLR's global-local loss).

    local: (B, n, d) projections of the temporally pooled features of n short (local) clips;
    global_slices: (B, n, d) projections of the n temporal slices of the unpooled features of one long
    (global) clip spanning the same time, slice t aligned with local clip t. Positive: the aligned
    pair (t, t); negatives: the other slices t2 != t of the same video. Computed in both directions
    (slice -> clips and clip -> slices) as in the authors' code; returns the mean over 2*B*n anchors.
    """
    _check("distinctive_unpooled_loss (L_D2)", local)
    if global_slices.shape != local.shape:
        raise TeacherError(f"L_D2 needs one global slice per local clip: {tuple(global_slices.shape)} "
                           f"vs {tuple(local.shape)}")
    B, n, _ = local.shape
    a = F.normalize(global_slices.float(), dim=-1)
    b = F.normalize(local.float(), dim=-1)
    sim = a @ b.transpose(1, 2) / tau                                    # (B, n, n): slice t1 vs clip t2
    logits = torch.cat([sim, sim.transpose(1, 2)], 0).reshape(2 * B * n, n)
    target = torch.arange(n, device=local.device).repeat(2 * B)
    return F.cross_entropy(logits, target)


def distinctive_loss(z: torch.Tensor, z_twin: torch.Tensor, global_slices: torch.Tensor,
                     tau: float = DEFAULT_TAU) -> torch.Tensor:
    """L_D = L_D1 (Eq. 3) + L_D2 (supplement D.2), the temporally-distinctive teacher's objective."""
    return distinctive_pooled_loss(z, z_twin, tau) + distinctive_unpooled_loss(z, global_slices, tau)


# -- the objectives as the authors train them (fidelity "authors"; notes on their pretraining.py) ----

LD2_AUTHORS_WEIGHT = 16.0  # their L_D2 is a sum over 4 clips (4x ours) and over 4 view pairs: 4 * 4


def authors_invariant_loss(z_views: torch.Tensor, z_long: torch.Tensor, tau: float = DEFAULT_TAU) -> torch.Tensor:
    """L_I as the authors train it: Eq. 1 over 2n views plus Eq. 1 over the long clip's two views.

    z_views: (B, 2n, d) projections of the n clips of each video under two augmentations; every two
    views of a video are positives (two augmentations of one clip included), other videos negatives.
    z_long: (B, 2, d) two augmentations of the long clip spanning the same window.
    The authors sum their pairwise NT-Xent over the 2n(2n-1) ordered view pairs and divide by n;
    ours averages over pairs, so the clip term weighs 2(2n-1) against 1 for the long clip (14 : 1
    at n = 4).
    """
    n = z_views.shape[1] // 2
    return 2 * (2 * n - 1) * invariant_loss(z_views, tau) + invariant_loss(z_long, tau)


def authors_distinctive_loss(z: torch.Tensor, z_twin: torch.Tensor, slices: torch.Tensor,
                             tau: float = DEFAULT_TAU) -> torch.Tensor:
    """L_D as the authors train it: B * L_D1 (Eq. 3) + 16 * L_D2 averaged over 4 view pairs.

    z, z_twin: (B, n, d) projections of the n clips under two augmentations; slices: (2, B, n, d)
    projections of the n temporal slices of the long clip under two augmentations. L_D2 (supp. D.2)
    pairs each clip view with each long-clip view (4 pairs). The authors SUM L_D1 over the videos of
    a batch (a per-video NT-Xent) where we average, hence the factor B (40 : 16 at their batch of 40).
    """
    B = z.shape[0]
    ld2 = torch.stack([distinctive_unpooled_loss(clip_view, slices[b], tau)
                       for clip_view in (z, z_twin) for b in range(2)]).mean()
    return B * distinctive_pooled_loss(z, z_twin, tau) + LD2_AUTHORS_WEIGHT * ld2


def hinton_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton KD as used by Camarena Sec. 3: T^2 * KL(softmax(t/T) || softmax(s/T)), mean over clips.

    The T^2 factor keeps the gradient scale of the soft term independent of T (Hinton et al. 2015).
    The recipe adds the supervised cross-entropy on labeled clips.
    """
    T = temperature
    log_p_s = F.log_softmax(student_logits.float() / T, dim=-1)      # (B, C)
    log_p_t = F.log_softmax(teacher_logits.detach().float() / T, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1)           # (B,) KL(p_t || p_s)
    return T * T * kl.mean()
