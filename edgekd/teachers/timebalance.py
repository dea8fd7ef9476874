"""TimeBalance's reweighting of its two self-supervised teachers (Dave et al., CVPR 2023, Eqs. 5-7).

    projected(teacher, emb)           Eq. 5's z: a clip embedding through the teacher's projection head
    similarity_matrix(z)              Eq. 5's C: cosines between the n clips of each video
    temporal_similarity(z_I, z_D)     per-video score s (Eqs. 5-6) from both teachers' clip projections
    blend(p_I, p_D, s)                teacher target p_T = s p_I + (1 - s) p_D (Eq. 7)

The projection head stays with the teacher (edgekd.teachers.ssl_teacher): Eq. 5 compares clips by z,
which Sec. 3.1 defines as the projection head's output. In that space the distinctive teacher was
trained to tell a video's clips apart, so s separates videos by their temporal structure; backbone
features of both teachers are alike for every clip of a video (measured on the synthetic set, mean
s: compound 0.73 vs repetitive 0.93 on backbone features, 0.21 vs 0.75 on projections). Training the
pair is edgekd.pretrain.ssl's job.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekd.errors import TeacherError

# How TimeBalance is wired (recipe.timebalance.fidelity, EmbeddedConfig.ssl_fidelity):
#   "authors"  as the authors' released code runs it (docs/recipes.md lists the differences)
#   "paper"    the equations read literally, where the paper leaves the wiring open
FIDELITIES = ("authors", "paper")


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
