"""Recipe wiring: each loss term is fed by the right teacher and sends its gradient to the student.

Four different real tiny3d teachers (one per role) see real decoded clips; every term and its
gradient with respect to the student's logits (or projected features) is recomputed here in numpy
from the teachers' own forward passes. Feeding a term from another teacher, taking pseudo-labels
from the student or detaching the student changes a number below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.distill.config import load_config
from edgekd.distill.recipes import Batch, StudentOut, build_recipe
from edgekd.distill.teacher_bank import TeacherBank
from edgekd.distill.train import DistillModel
from edgekd.students import build_student

NL = 3  # labeled videos in the batch; the other 5 are unlabeled


@pytest.fixture(scope="module")
def clips(tiny_synth, tiny_spec):
    """8 real decoded train videos x 2 clips: (8, 2, 3, T, H, W) and their labels (8,)."""
    from edgekd.data.dataset import ClipDataset
    from edgekd.data.manifest import Manifest

    ds = ClipDataset(Manifest.load(tiny_synth).split("train"), tiny_spec, mode="eval", clips_per_video=2)
    items = [ds[i] for i in range(8)]
    return torch.stack([it["video"] for it in items]), torch.tensor([it["label"] for it in items])


@pytest.fixture
def teachers(tiny_spec, teacher_factory, clips):
    """One distinct network per role, so a term fed by the wrong role gives other numbers.

    The TimeBalance pair gets a projection head (Eq. 5 compares projections) that centres their
    embeddings on these clips: post-ReLU features of untrained nets all point one way (s ~ 0.98),
    centred ones spread s over (0, 1), so either teacher's share of Eq. 7 shows in the numbers.
    """
    out = {"vl": teacher_factory(tiny_spec, 11, width=0.5), "kd": teacher_factory(tiny_spec, 12),
           "invariant": teacher_factory(tiny_spec, 13), "distinctive": teacher_factory(tiny_spec, 14)}
    for role in ("invariant", "distinctive"):
        t = out[role]
        with torch.no_grad():
            mean = t.embed(clips[0].flatten(0, 1)).mean(0)
        t.projection = torch.nn.Linear(t.embed_dim, t.embed_dim)
        t.projection.weight.data = torch.eye(t.embed_dim)
        t.projection.bias.data = -mean
    return out


def run_recipe(name, overrides, teachers, clips, stage=2, extra=()):
    """Build the recipe and a tiny3d student; return (cfg, terms, stats, student outputs, student)."""
    cfg = load_config(None, overrides + [f"recipe.name={name}", *extra])
    recipe = build_recipe(cfg)
    bank = TeacherBank({role: teachers[role] for role in recipe.roles})
    video, labels = clips
    torch.manual_seed(0)
    student = build_student("tiny3d", num_classes=4, frames=video.shape[3], size=video.shape[4], width=0.25)
    model = DistillModel(student, recipe.make_projector(student, bank))
    n = recipe.clips_per_video()
    batch = Batch(x=video[:, 0], labels=labels[:NL], clips=video[:, :n] if n > 1 else None)
    out = StudentOut(*model(batch.x, project=recipe.projects(stage)))
    terms, stats = recipe.losses(out, batch, bank, stage)
    return cfg, terms, stats, out, student


def teacher_out(teacher, x):
    """(embedding, logits) of a teacher's own forward pass, as float64 numpy."""
    with torch.no_grad():
        emb = teacher.embed(x)
        return emb.double().numpy(), teacher.head(emb).double().numpy()


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_(t):
    return t.detach().double().numpy()


def check_gradient(term, wrt, expected, student):
    """d term / d wrt equals the hand-computed `expected`, and a non-zero gradient reaches the student."""
    assert term.grad_fn is not None, "the term is detached from the student"
    got = torch.autograd.grad(term, wrt, retain_graph=True)[0]
    np.testing.assert_allclose(np_(got), expected, rtol=1e-4, atol=1e-7)
    grads = torch.autograd.grad(term, list(student.parameters()), retain_graph=True, allow_unused=True)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def test_kd_is_t2_kl_to_the_kd_teacher_with_gradient_into_the_student(overrides, teachers, clips):
    cfg, terms, _, out, student = run_recipe("kd", overrides, teachers, clips)
    T, w = cfg.recipe.kd.temperature, cfg.recipe.kd.weight
    s = np_(out.logits)                                         # (B, C) student, all clips
    _, t = teacher_out(teachers["kd"], clips[0][:, 0])          # (B, C) the kd teacher
    p_t, p_s = softmax(t / T), softmax(s / T)
    B = s.shape[0]
    kd = w * T * T * np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1))
    assert terms["kd"].item() == pytest.approx(kd, rel=1e-5)
    # d/ds of T^2 * mean KL(p_t || softmax(s/T)) = T * (softmax(s/T) - p_t) / B
    check_gradient(terms["kd"], out.logits, w * T * (p_s - p_t) / B, student)


def test_pseudo_labels_are_the_vl_teachers_argmax_on_unlabeled_clips(overrides, teachers, clips):
    _, t = teacher_out(teachers["vl"], clips[0][NL:, 0])        # (Bu, C) teacher on the unlabeled clips
    p_t = softmax(t)
    conf, pseudo = p_t.max(1), p_t.argmax(1)
    threshold = float(np.sort(conf)[1])                         # keeps 4 of the 5 clips, drops one
    cfg, terms, stats, out, student = run_recipe("pseudo", overrides, teachers, clips,
                                                 extra=[f"recipe.pseudo.threshold={threshold}",
                                                        "recipe.pseudo.weight=0.25"])
    keep = conf >= threshold
    assert keep.sum() == 4
    s = np_(out.logits)[NL:]                                    # (Bu, C) student, unlabeled clips
    assert (s.argmax(1) != pseudo)[keep].any(), "fixture: student and teacher must disagree somewhere"
    p_s = softmax(s)
    w, Bu = cfg.recipe.pseudo.weight, len(s)
    assert w == 0.25  # not 1: a weight left out of the term shows
    ce = -np.log(p_s[np.arange(Bu), pseudo])
    assert terms["pseudo"].item() == pytest.approx(w * np.sum(ce * keep) / Bu, rel=1e-5)
    assert stats["keep"] == pytest.approx(keep.mean())
    # d/ds CE(s, y) = softmax(s) - onehot(y), on kept clips, over all Bu clips; nothing on labeled clips
    g = np.zeros_like(np_(out.logits))
    g[NL:] = w * (p_s - np.eye(4)[pseudo]) * keep[:, None] / Bu
    check_gradient(terms["pseudo"], out.logits, g, student)


def test_feature_stage_regresses_the_vl_teachers_embedding(overrides, teachers, clips):
    cfg, terms, _, out, student = run_recipe("feature", overrides, teachers, clips, stage=1)
    assert cfg.recipe.feature.normalize and set(terms) == {"feature"}
    emb, _ = teacher_out(teachers["vl"], clips[0][:, 0])        # (B, 64) the VL teacher's embedding
    a = np_(out.projected)                                      # (B, 64) student, projected
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    u, b = a / norm, emb / np.linalg.norm(emb, axis=1, keepdims=True)
    B, w = len(a), cfg.recipe.feature.weight
    assert terms["feature"].item() == pytest.approx(w * np.mean(np.sum((u - b) ** 2, axis=1)), rel=1e-5)
    # d/da ||a/|a| - b||^2 = (I - u u^T) / |a| * 2 (u - b), mean over the B clips
    g_u = 2 * w * (u - b) / B
    g = (g_u - u * np.sum(u * g_u, axis=1, keepdims=True)) / norm
    check_gradient(terms["feature"], out.projected, g, student)


def test_timebalance_target_blends_invariant_and_distinctive_per_eq7(overrides, teachers, clips):
    # the paper's reading: s from the step's n = 2 clips, clamped ("authors" fixes s per video before
    # training: tests/distill/test_timebalance_fidelity.py)
    cfg, terms, stats, out, student = run_recipe("timebalance", overrides, teachers, clips,
                                                 extra=("recipe.timebalance.fidelity=paper", "recipe.timebalance.clips=2"))
    video = clips[0]
    n = cfg.recipe.timebalance.clips
    assert n == 2
    z, p = {}, {}
    for role in ("invariant", "distinctive"):
        emb, _ = teacher_out(teachers[role], video.flatten(0, 1))
        head = teachers[role].projection                            # Eq. 5: z = g(f(clip))
        emb = emb @ np_(head.weight).T + np_(head.bias)
        z[role] = emb.reshape(len(video), n, -1)                    # (B, n, D)
        p[role] = softmax(teacher_out(teachers[role], video[:, 0])[1])
    # Eq. 6 with n = 2: s = (cos_I(clip1, clip2) + cos_D(clip1, clip2)) / 2, both ordered pairs
    cos = {r: np.sum(v[:, 0] * v[:, 1], 1) / np.linalg.norm(v[:, 0], axis=1) / np.linalg.norm(v[:, 1], axis=1)
           for r, v in z.items()}
    s = np.clip((cos["invariant"] + cos["distinctive"]) / 2, 0, 1)  # (B,)
    assert np.abs(p["invariant"] - p["distinctive"]).max() > 1e-3 and 0.05 < s.mean() < 0.95, \
        "fixture: both teachers must weigh in Eq. 7"
    assert np.abs(s - 0.5).min() > 0.01, "fixture: swapping the teachers (s <-> 1 - s) must show"
    p_t = s[:, None] * p["invariant"] + (1 - s[:, None]) * p["distinctive"]   # Eq. 7
    assert stats["s"] == pytest.approx(s.mean(), rel=1e-5)
    check_timebalance_l2(terms["l2"], out, p_t, cfg, student)


def test_timebalance_avg_targets_the_mean_of_both_teachers(overrides, teachers, clips):
    cfg, terms, stats, out, student = run_recipe("timebalance-avg", overrides, teachers, clips)
    x = clips[0][:, 0]
    p_i, p_d = (softmax(teacher_out(teachers[role], x)[1]) for role in ("invariant", "distinctive"))
    assert np.abs(p_i - p_d).max() > 1e-3, "fixture: the two teachers must differ"
    check_timebalance_l2(terms["l2"], out, (p_i + p_d) / 2, cfg, student)  # TB Table 3 row d: s = 0.5
    assert "s" not in stats


def check_timebalance_l2(term, out, p_t, cfg, student):
    """Eq. 8 against the target p_t (B, C): w/2 on labeled, w on unlabeled clips, each an MSE over its clips
    and classes; and its gradient into the student's logits."""
    tb = cfg.recipe.timebalance
    B = len(p_t)
    w = np.array([tb.weight / 2] * NL + [tb.weight] * (B - NL))[:, None]  # labeled clips: w / 2
    p_s = softmax(np_(out.logits))
    C = p_s.shape[1]
    l2 = np.sum((w * (p_t - p_s) ** 2)[:NL]) / (NL * C) + np.sum((w * (p_t - p_s) ** 2)[NL:]) / ((B - NL) * C)
    assert term.item() == pytest.approx(l2, rel=1e-5)
    # d/dp_S of the two means, then through the softmax: g_z = p_S * (g_p - <g_p, p_S>)
    rows = np.array([NL] * NL + [B - NL] * (B - NL))[:, None]
    g_p = -2 * w * (p_t - p_s) / (rows * C)
    check_gradient(term, out.logits, p_s * (g_p - np.sum(g_p * p_s, 1, keepdims=True)), student)
