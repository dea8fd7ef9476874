"""TimeBalance's contrastive losses against hand-computed values, and their invariance properties.

h(u, v) = exp(cos(u, v) / tau) with tau = 0.1, so h = e^10 for equal directions, 1 for orthogonal ones
and e^-10 for opposite ones.
"""

import math

import pytest
import torch

from edgekd.errors import TeacherError
from edgekd.teachers.losses import (distinctive_loss, distinctive_pooled_loss, distinctive_unpooled_loss,
                                    invariant_loss)

E = math.e


def test_invariant_loss_eq1_by_hand():
    # video 0: two clips pointing the same way; video 1: two opposite clips, orthogonal to video 0
    z = torch.tensor([[[1.0, 0.0], [2.0, 0.0]],
                      [[0.0, 1.0], [0.0, -1.0]]])
    # anchor (i=0, t1, t2): positive h = e^10; negatives h(z_t1^0, z_t1^1) = 1 and, over all j,
    # h(z_t1^0, z_t2^j) = e^10 (j = 0, the positive) + 1 (j = 1)  ->  -log(e^10 / (e^10 + 2))
    video0 = math.log(1 + 2 * E ** -10)
    # anchor (i=1, t1, t2): positive h = e^-10 (opposite clips); negatives 1 (video 0, same t1),
    # and e^-10 (j = 1) + 1 (j = 0) over t2                  ->  -log(e^-10 / (e^-10 + 2))
    video1 = math.log(1 + 2 * E ** 10)
    expected = (2 * video0 + 2 * video1) / 4  # mean over B * n * (n - 1) = 4 anchor/positive pairs
    assert invariant_loss(z).item() == pytest.approx(expected, rel=1e-5)


def test_invariant_loss_matches_the_equation_written_as_loops():
    torch.manual_seed(0)
    B, n, tau = 3, 4, 0.2
    z = torch.randn(B, n, 5)
    cos = lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim=0).item()  # noqa: E731
    h = lambda a, b: math.exp(cos(a, b) / tau)  # noqa: E731
    terms = []
    for i in range(B):
        for t1 in range(n):
            for t2 in range(n):
                if t1 == t2:
                    continue
                den = sum(h(z[i, t1], z[j, t1]) for j in range(B) if j != i) + sum(h(z[i, t1], z[j, t2])
                                                                                  for j in range(B))
                terms.append(-math.log(h(z[i, t1], z[i, t2]) / den))
    assert invariant_loss(z, tau).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_distinctive_pooled_loss_eq3_by_hand():
    clips = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])           # two orthogonal timestamps, B = 1
    # every anchor: positive its twin (h = e^10), negatives the other timestamp in both views (1 + 1)
    assert distinctive_pooled_loss(clips, clips.clone()).item() == pytest.approx(math.log(1 + 2 * E ** -10), abs=1e-6)
    same = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])            # both timestamps look alike
    # positive e^10, negatives e^10 + e^10  ->  -log(1/3)
    assert distinctive_pooled_loss(same, same.clone()).item() == pytest.approx(math.log(3), rel=1e-5)


def test_distinctive_unpooled_loss_by_hand():
    local = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    # aligned slice and clip agree (e^10), the other slice is orthogonal (1), in both directions
    assert distinctive_unpooled_loss(local, local.clone()).item() == pytest.approx(math.log(1 + E ** -10), abs=1e-6)
    swapped = local.flip(1)                                      # slices in the wrong temporal order
    assert distinctive_unpooled_loss(local, swapped).item() == pytest.approx(math.log(1 + E ** 10), rel=1e-5)
    assert distinctive_loss(local, local.clone(), local.clone()).item() == pytest.approx(
        math.log(1 + 2 * E ** -10) + math.log(1 + E ** -10), abs=1e-6)


def test_invariant_loss_falls_when_clips_of_a_video_agree():
    torch.manual_seed(1)
    B, n, d = 8, 4, 32
    per_video = torch.randn(B, 1, d)
    agree = per_video + 0.05 * torch.randn(B, n, d)               # clips of a video nearly identical
    scattered = torch.randn(B, n, d)                             # clips of a video unrelated
    assert invariant_loss(agree).item() < 0.1 < invariant_loss(scattered).item()
    # cosine similarity: the loss ignores the length of each projection
    assert invariant_loss(agree * 3.0).item() == pytest.approx(invariant_loss(agree).item(), rel=1e-5)


def test_distinctive_loss_falls_when_clips_differ_but_twins_agree():
    torch.manual_seed(2)
    B, n, d = 4, 4, 32
    distinct = torch.randn(B, n, d)
    twins = distinct + 0.05 * torch.randn(B, n, d)
    low = distinctive_pooled_loss(distinct, twins).item()
    alike = torch.randn(B, 1, d).expand(B, n, d)                 # every clip of a video the same
    high = distinctive_pooled_loss(alike, alike.clone()).item()
    assert low < 0.1
    assert high == pytest.approx(math.log(2 * n - 1), rel=1e-4)   # positive indistinguishable from 2n-2 negatives
    # L_I prefers the opposite: it is high where L_D1 is low
    assert invariant_loss(distinct).item() > invariant_loss(alike).item()


def test_losses_backpropagate_and_reject_bad_shapes():
    z = torch.randn(2, 3, 8, requires_grad=True)
    (invariant_loss(z) + distinctive_loss(z, z * 1.1, z.flip(1))).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    with pytest.raises(TeacherError, match="n>=2"):
        invariant_loss(torch.randn(4, 1, 8))
    with pytest.raises(TeacherError, match="B>=2"):
        invariant_loss(torch.randn(1, 4, 8))   # no other video: L_I has no negatives
    with pytest.raises(TeacherError):
        distinctive_pooled_loss(torch.randn(2, 3, 8), torch.randn(2, 4, 8))
