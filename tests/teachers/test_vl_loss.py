"""The CLIP contrastive alignment loss (vl_loss.py) against values computed by hand."""

import math

import pytest
import torch

from edgekd.errors import TeacherError
from edgekd.teachers.vl_loss import LogitScale, clip_contrastive_loss, clip_targets


def _ce(row, target):
    """-log softmax(row)[target], written out."""
    return -(row[target] - math.log(sum(math.exp(v) for v in row)))


def test_matches_hand_computed_value():
    # unit vectors: v0 = (1, 0), v1 = (0.6, 0.8); captions t0 = (1, 0), t1 = (0, 1); scale s = 2
    video = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    logits = [[2 * 1.0, 2 * 0.0], [2 * 0.6, 2 * 0.8]]                  # s * <v_i, t_j>
    per_video = (_ce(logits[0], 0) + _ce(logits[1], 1)) / 2
    cols = [[logits[0][0], logits[1][0]], [logits[0][1], logits[1][1]]]  # each caption over the videos
    per_text = (_ce(cols[0], 0) + _ce(cols[1], 1)) / 2
    expected = (per_video + per_text) / 2
    got = clip_contrastive_loss(video, text, torch.tensor(2.0))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.2987, abs=1e-4)   # (0.1269 + 0.5130 + 0.3711 + 0.1838) / 4


def test_inputs_are_normalized_inside():
    video = torch.tensor([[3.0, 0.0], [1.2, 1.6]])                       # same directions, other lengths
    text = torch.tensor([[0.5, 0.0], [0.0, 7.0]])
    ref = clip_contrastive_loss(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), torch.eye(2), torch.tensor(2.0))
    assert clip_contrastive_loss(video, text, torch.tensor(2.0)).item() == pytest.approx(ref.item(), rel=1e-6)


def test_identical_captions_are_both_positives():
    # two videos with the same caption: the target spreads 1/2-1/2 over them
    video = torch.eye(2)
    text = torch.eye(2)
    groups = torch.tensor([7, 7])
    assert clip_targets(groups).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    expected = math.log(math.e + 1) - 0.5                               # -(1/2) log p(same) - (1/2) log p(other)
    got = clip_contrastive_loss(video, text, torch.tensor(1.0), groups)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # distinct groups give exactly CLIP's one-hot loss
    distinct = clip_contrastive_loss(video, text, torch.tensor(1.0), torch.tensor([0, 1]))
    assert distinct.item() == pytest.approx(clip_contrastive_loss(video, text, torch.tensor(1.0)).item())


def test_loss_falls_as_videos_align_with_their_captions():
    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    noise = torch.randn(8, 16)
    losses = [clip_contrastive_loss(a * text + (1 - a) * noise, text, torch.tensor(10.0)).item()
              for a in (0.0, 0.3, 0.6, 1.0)]
    assert losses == sorted(losses, reverse=True)
    assert losses[-1] < 0.05 < losses[0]


def test_learnable_scale_starts_at_clip_temperature_and_is_clamped():
    scale = LogitScale()
    assert scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        scale.log_scale.fill_(10.0)
    assert scale().item() == pytest.approx(100.0)


def test_bad_shapes_raise_teacher_error():
    with pytest.raises(TeacherError, match="batch size of at least 2"):
        clip_contrastive_loss(torch.ones(1, 4), torch.ones(1, 4), torch.tensor(1.0))
    with pytest.raises(TeacherError):
        clip_contrastive_loss(torch.ones(3, 4), torch.ones(3, 5), torch.tensor(1.0))


def test_caption_regression_and_the_combined_loss():
    from edgekd.teachers.vl_loss import alignment_loss, caption_regression_loss

    video = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    text = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert caption_regression_loss(video, text).item() == pytest.approx(((1 - 1.0) + (1 - 0.8)) / 2)
    s = torch.tensor(2.0)
    both = alignment_loss(video, text, s, None, contrastive=1.0, regress=0.5)
    assert both.item() == pytest.approx(clip_contrastive_loss(video, text, s).item() + 0.5 * 0.1, rel=1e-6)
    assert alignment_loss(video, text, s, None, contrastive=0.0, regress=1.0).item() == pytest.approx(0.1)
