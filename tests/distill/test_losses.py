"""Every loss term against a value computed by hand (the arithmetic is in each test)."""

import math

import pytest
import torch

from edgekd.distill import losses
from edgekd.errors import ConfigError

LN3 = math.log(3.0)


def test_feature_mse_is_mean_squared_l2_per_clip():
    # VL Eq. 1: clip 1 -> 1^2 + 2^2 = 5, clip 2 -> 3^2 + 4^2 = 25; mean over clips = 15
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    t = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert losses.feature_mse(s, t).item() == pytest.approx(15.0)


def test_projector_maps_to_teacher_width_or_refuses_a_mismatch():
    proj = losses.make_projector(16, 384)
    assert proj(torch.zeros(3, 16)).shape == (3, 384)
    assert isinstance(losses.make_projector(8, 8, "none"), torch.nn.Identity)
    with pytest.raises(ConfigError, match="width 16 != teacher width 384"):
        losses.make_projector(16, 384, "none")


def test_cross_entropy():
    # logits [0, ln 3] -> p = [1/4, 3/4]; label 1 -> -ln(3/4), label 0 -> -ln(1/4); mean
    logits = torch.tensor([[0.0, LN3], [0.0, LN3]])
    expected = (-math.log(0.75) - math.log(0.25)) / 2
    assert losses.cross_entropy(logits, torch.tensor([1, 0])).item() == pytest.approx(expected, rel=1e-6)


def test_pseudo_label_ce_counts_confident_clips_over_all_clips():
    # teacher: clip 1 p = [3/4, 1/4] (conf .75 >= .6, pseudo-label 0); clip 2 p = [1/2, 1/2] (dropped)
    teacher = torch.tensor([[LN3, 0.0], [0.0, 0.0]])
    # student clip 1: p = [1/4, 3/4] -> CE vs label 0 = ln 4; divided by 2 unlabeled clips
    student = torch.tensor([[0.0, LN3], [5.0, -5.0]])
    loss, keep = losses.pseudo_label_ce(student, teacher, threshold=0.6)
    assert loss.item() == pytest.approx(math.log(4.0) / 2, rel=1e-6)
    assert keep.item() == pytest.approx(0.5)
    loss, keep = losses.pseudo_label_ce(student, teacher, threshold=0.9)
    assert loss.item() == 0.0 and keep.item() == 0.0


def test_hinton_kd():
    # T = 2: teacher [2 ln 3, 0] / 2 -> p_t = [3/4, 1/4]; student [0, 0] -> p_s = [1/2, 1/2]
    # KL(p_t || p_s) = 3/4 ln(3/2) + 1/4 ln(1/2); times T^2 = 4
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    loss = losses.hinton_kd(torch.zeros(1, 2), torch.tensor([[2 * LN3, 0.0]]), temperature=2.0)
    assert loss.item() == pytest.approx(4 * kl, rel=1e-6)
    # identical distributions -> 0
    assert losses.hinton_kd(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 2.0]]), 4.0).item() == pytest.approx(0, abs=1e-7)


def test_mix_teachers_eq7_and_clamp():
    p_i, p_d = torch.tensor([[1.0, 0.0]] * 3), torch.tensor([[0.0, 1.0]] * 3)
    s = torch.tensor([0.25, 1.5, -0.2])  # 1.5 and -0.2 clamp to 1 and 0
    out = losses.mix_teachers(p_i, p_d, s)
    assert torch.allclose(out, torch.tensor([[0.25, 0.75], [1.0, 0.0], [0.0, 1.0]]))


def test_timebalance_l2_eq8():
    # p_S = softmax([0, 0]) = [1/2, 1/2]; p_T = [1/4, 3/4]; ((1/4)^2 + (1/4)^2) / 2 classes = 1/16
    loss = losses.timebalance_l2(torch.zeros(2, 2), torch.tensor([[0.25, 0.75], [0.25, 0.75]]))
    assert loss.item() == pytest.approx(0.0625)


def test_temporal_similarity_eq6_feeds_the_mix():
    from edgekd.teachers.timebalance import temporal_similarity

    # invariant teacher: both clips identical (off-diagonal cos = 1); distinctive: orthogonal (0)
    z_inv = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    z_dist = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    s = temporal_similarity(z_inv, z_dist)  # (1 + 1 + 0 + 0) / (2 * 2 * 1) = 0.5
    assert s.item() == pytest.approx(0.5)
    p = losses.mix_teachers(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), s)
    assert torch.allclose(p, torch.tensor([[0.5, 0.5]]))


def test_feature_mse_normalized_is_two_minus_two_cos():
    # a = [3, 4] -> [0.6, 0.8]; b = [1, 0]; cos = 0.6 -> 2 - 2 * 0.6 = 0.8
    loss = losses.feature_mse(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0]]), normalize=True)
    assert loss.item() == pytest.approx(0.8)


def test_timebalance_scores_compare_clips_in_projection_space():
    """Eq. 5's z is the projection head's output (TB Sec. 3.1), not the backbone feature."""
    from torch import nn

    from edgekd.distill.config import load_config
    from edgekd.distill.recipes import Batch, build_recipe
    from edgekd.distill.teacher_bank import TeacherBank

    class Teacher(nn.Module):  # the two clips' embeddings are [1, 0] and [1, 1]: cos = 0.707
        num_classes, embed_dim = 2, 2

        def __init__(self, projection):
            super().__init__()
            self.__dict__["projection"] = projection

        def embed(self, x):
            return torch.tensor([[1.0, 0.0], [1.0, 1.0]]).repeat(x.shape[0] // 2, 1)

        def logits(self, x):
            return torch.zeros(x.shape[0], 2)

    swap_sign = nn.Linear(2, 2, bias=False)          # [a, b] -> [a, -b]: cos([1, 0], [1, -1]) = 0.707 ...
    swap_sign.weight.data = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    drop_first = nn.Linear(2, 2, bias=False)         # [a, b] -> [b, b]: ([0, 0], [1, 1]) cos = 0 ...
    drop_first.weight.data = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    bank = TeacherBank({"invariant": Teacher(swap_sign), "distinctive": Teacher(drop_first)})
    batch = Batch(x=torch.zeros(1, 3, 2, 4, 4), labels=torch.zeros(0, dtype=torch.long),
                  clips=torch.zeros(1, 2, 3, 2, 4, 4))
    recipe = build_recipe(load_config(None, ["recipe.name=timebalance"]))  # not prepared: s from the batch's z
    s = recipe.scores(batch, bank)
    assert s.item() == pytest.approx((2 * 0.5 ** 0.5 + 0.0) / 4, abs=1e-6)   # ... not (0.707 * 4) / 4
    bank = TeacherBank({"invariant": Teacher(None), "distinctive": Teacher(None)})  # no head: embeddings
    assert recipe.scores(batch, bank).item() == pytest.approx(0.5 ** 0.5, abs=1e-6)
