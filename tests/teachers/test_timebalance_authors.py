"""TimeBalance teachers wired as the authors' code trains them (fidelity "authors").

The loss weights are checked against a plain re-implementation of the authors' sums (SimCLR NT-Xent
per view pair, TCLR's per-video NT-Xent), the long clip against hand-written frame indices.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgekd.data.manifest import default_data_spec
from edgekd.data.sampling import clip_indices, window_starts
from edgekd.data.splits import make_split
from edgekd.teachers.losses import (authors_distinctive_loss, authors_invariant_loss,
                                    distinctive_unpooled_loss)
from edgekd.pretrain.augment import authors_augment
from edgekd.pretrain.ssl import pretrain_ssl
from edgekd.pretrain.ssl_objectives import make_global_clip


def nt_xent(a: torch.Tensor, b: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """SimCLR's NT-Xent of two views (N, d): 2N anchors, the positive kept in the denominator, mean."""
    v = F.normalize(torch.cat([a, b]), dim=-1)
    N = a.shape[0]
    total = 0.0
    for i in range(2 * N):
        pos = (i + N) % (2 * N)
        logits = torch.stack([v[i] @ v[j] / tau for j in range(2 * N) if j != i])
        total = total - (v[i] @ v[pos] / tau - torch.logsumexp(logits, 0))
    return total / (2 * N)


def test_authors_invariant_loss_is_their_sum_over_view_pairs():
    torch.manual_seed(0)
    B, n, d = 3, 4, 5
    views = torch.randn(B, 2 * n, d)                                # 4 clips x 2 augmentations
    long = torch.randn(B, 2, d)
    # their loss_ic1: NT-Xent over each of the 56 ordered pairs of the 8 views, summed, / 4; loss_ic2
    # the long clip's two augmentations, weight 1
    ic1 = sum(nt_xent(views[:, a], views[:, b]) for a in range(2 * n) for b in range(2 * n) if a != b) / 4
    expected = ic1 + nt_xent(long[:, 0], long[:, 1])
    assert torch.allclose(authors_invariant_loss(views, long), expected, atol=1e-4)


def test_authors_distinctive_loss_weights_ld1_by_batch_and_ld2_by_16():
    torch.manual_seed(1)
    B, n, d = 3, 4, 5
    z, twin, slices = torch.randn(B, n, d), torch.randn(B, n, d), torch.randn(2, B, n, d)
    # their loss_local_local: per video, NT-Xent over its n clips in two augmentations, SUMMED over videos
    ld1 = sum(nt_xent(z[i], twin[i]) for i in range(B))
    # their L_D2 per call is 4x ours, summed over the 4 (clip view, long view) pairs
    ld2 = sum(4 * distinctive_unpooled_loss(c, slices[k]) for c in (z, twin) for k in range(2))
    assert torch.allclose(authors_distinctive_loss(z, twin, slices), ld1 + ld2, atol=1e-4)


def test_long_clip_spans_the_window_of_the_back_to_back_clips_at_stride_n():
    # 64 frames whose pixel value is the frame index; 4 clips of 4 frames at stride 1 in a random window
    n, T = 4, 4
    starts = window_starts(64, T, 1, n, np.random.default_rng(3))
    idx = torch.from_numpy(clip_indices(starts, T, 1, 64)).float()              # (n, T)
    clips = idx.view(1, n, 1, T, 1, 1).expand(1, n, 3, T, 2, 2)
    long = make_global_clip(clips, stride=n)                                   # (1, 3, T, 2, 2)
    first = int(starts[0])
    assert long[0, 0, :, 0, 0].tolist() == [first, first + 4, first + 8, first + 12]  # 16 frames at stride 4


def test_authors_augment_is_one_draw_per_clip():
    torch.manual_seed(0)
    N, T = 64, 4
    frame = torch.randn(N, 3, 1, 16, 16)
    out = authors_augment(frame.expand(N, 3, T, 16, 16).contiguous(), [0.5] * 3, [0.25] * 3, hflip=True,
                          gen=torch.Generator().manual_seed(0))
    assert out.shape == (N, 3, T, 16, 16) and torch.isfinite(out).all()
    assert torch.allclose(out, out[:, :, :1].expand_as(out))        # a static clip stays static: motion intact
    assert not torch.allclose(out[0], out[1])                       # clips get different draws
    erased = (out == 0).all(dim=1).any(dim=(1, 2, 3)).float().mean()  # a box of exact zeros (p 0.7)
    assert 0.5 < erased < 0.9


@pytest.mark.parametrize("objective", ["invariant", "distinctive"])
def test_authors_pretraining_runs_and_records_its_wiring(tiny_manifest, tmp_path, objective, monkeypatch):
    import json

    from edgekd.data import sampling

    windows = []
    real = sampling.window_starts
    monkeypatch.setattr(sampling, "window_starts", lambda *a, **k: windows.append(a) or real(*a, **k))
    spec = default_data_spec(tiny_manifest)
    split = make_split(tiny_manifest, labeled_per_class=1)
    out = pretrain_ssl(objective, tiny_manifest, split, spec, tmp_path / objective, epochs=1, batch_size=8,
                       backbone_kwargs={"width": 0.25}, data="memory", num_workers=0, progress=False,
                       fidelity="authors")
    meta = json.loads((out / "teacher.json").read_text())
    assert meta["config"]["pretrain"]["fidelity"] == "authors"
    assert meta["config"]["pretrain"]["augment"] == {"authors": True, "hflip": False}
    assert all(math.isfinite(v) for v in meta["metrics"]["loss_per_epoch"])
    # every video's 4 clips came from one window at the clip's stride (16 videos: 2 batches of 8)
    assert len(windows) == 16 and {(w[1], w[2], w[3]) for w in windows} == {(spec.frames, spec.frame_stride, 4)}
