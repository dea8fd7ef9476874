"""TimeBalance's student side as the authors run it (recipe.timebalance.fidelity = "authors") vs "paper".

Each wiring choice against a case computed by hand: s once per video from non-augmented back-to-back
clips and fixed across epochs, no clamp on s, separate student passes (BatchNorm statistics) for the
labeled and the unlabeled clips.
"""

import numpy as np
import pytest
import torch

from edgekd.distill.config import load_config
from edgekd.distill.recipes import Batch, TimeBalance, build_recipe
from edgekd.distill.teacher_bank import TeacherBank
from edgekd.distill.train import DistillModel, distill
from edgekd.errors import ConfigError


def test_unknown_fidelity_fails_with_a_hint(overrides):
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides + ["recipe.timebalance.fidelity=author"])
    assert "recipe.timebalance.fidelity" in e.value.message and "'authors'" in e.value.hint


def test_authors_blend_does_not_clamp_s(overrides, tiny_teachers, tiny_spec):
    bank = TeacherBank({k: tiny_teachers[k] for k in ("invariant", "distinctive")})
    x = torch.randn(2, 3, tiny_spec.frames, tiny_spec.size, tiny_spec.size)
    batch = Batch(x=x, labels=torch.zeros(0, dtype=torch.long), video_ids=["a", "b"])
    p_i = tiny_teachers["invariant"].logits(x).softmax(-1)
    p_d = tiny_teachers["distinctive"].logits(x).softmax(-1)
    for fidelity, expected in (("authors", -0.25 * p_i + 1.25 * p_d), ("paper", p_d)):  # paper: s -> 0
        recipe = build_recipe(load_config(None, overrides + ["recipe.name=timebalance",
                                                             f"recipe.timebalance.fidelity={fidelity}"]))
        recipe.s_by_video = {"a": -0.25, "b": -0.25}
        bank.new_step()
        p_t, stats = recipe.teacher_target(batch, bank)
        assert torch.allclose(p_t, expected, atol=1e-6) and stats["s"] == -0.25


def test_separate_passes_keep_batchnorm_statistics_apart(tiny_spec):
    from edgekd.students import build_student

    torch.manual_seed(0)
    student = build_student("tiny3d", num_classes=4, frames=tiny_spec.frames, size=tiny_spec.size, width=0.25,
                            dropout=0.0)                          # only BatchNorm makes clips interact
    model = DistillModel(student).train()
    x = torch.randn(6, 3, tiny_spec.frames, tiny_spec.size, tiny_spec.size)
    other = x.clone()
    other[2:] = other[2:] * 3 + 1                                   # different unlabeled clips
    with torch.no_grad():
        alone = student.forward_head(student.forward_features(x[:2]))  # the labeled clips on their own
        split = model(x, split=2)[1]
        assert torch.allclose(split[:2], alone, atol=1e-5)
        assert torch.allclose(model(other, split=2)[1][:2], alone, atol=1e-5)  # blind to the unlabeled part
        assert not torch.allclose(model(other)[1][:2], alone, atol=1e-3)       # one pass mixes them


def _trace_run(overrides, tiny_teachers, monkeypatch, fidelity):
    """Train 2 epochs with augmented clips at stride 2; record every step's s per video and the student's
    batch sizes."""
    from edgekd.distill import timebalance_scores
    from edgekd.students.tiny3d import Tiny3D

    seen_s: dict[str, list[float]] = {}
    sizes: list[int] = []
    prepared: list[dict] = []
    scores, forward = TimeBalance.scores, Tiny3D.forward_features
    video_scores = timebalance_scores.video_scores

    def spy_scores(self, batch, teachers):
        s = scores(self, batch, teachers)
        for v, value in zip(batch.video_ids, s.tolist()):
            seen_s.setdefault(v, []).append(value)
        return s

    def spy_forward(self, x):
        if self.training:
            sizes.append(x.shape[0])
        return forward(self, x)

    def spy_video_scores(*a, **k):
        prepared.append(video_scores(*a, **k))
        return prepared[-1]

    monkeypatch.setattr(TimeBalance, "scores", spy_scores)
    monkeypatch.setattr(Tiny3D, "forward_features", spy_forward)
    monkeypatch.setattr(timebalance_scores, "video_scores", spy_video_scores)
    cfg = load_config(None, overrides + ["recipe.name=timebalance", f"recipe.timebalance.fidelity={fidelity}",
                                         "recipe.timebalance.clips=2", "data.augment=true", "train.epochs=2",
                                         "data.frame_stride=2",  # student clips at stride 2; s clips at 1
                                         f"run.name={fidelity}"])
    distill(cfg, teachers=tiny_teachers)
    return seen_s, sizes, prepared


def _hand_s(tiny_synth, tiny_spec, teachers, video_id):
    """s of one tiny_synth video (16 frames): clips of 8 frames at stride 1 starting at 0 and 8, centre crop."""
    from edgekd.data.decode import read_frames
    from edgekd.data.manifest import Manifest
    from edgekd.data.transforms import eval_transform, finish
    from edgekd.teachers.timebalance import projected, temporal_similarity

    entry = next(e for e in Manifest.load(tiny_synth).entries if e.video_id == video_id)
    frames = read_frames(entry.path, np.arange(16), size=tiny_spec.size)
    tf = eval_transform(tiny_spec.size)                               # centre crop (uint8 + colour map)
    clips = torch.stack([finish(*tf(part), tiny_spec.mean, tiny_spec.std) for part in (frames[:8], frames[8:])])
    with torch.no_grad():
        z = [projected(teachers[r], teachers[r].embed(clips)).unsqueeze(0) for r in ("invariant", "distinctive")]
    return float(temporal_similarity(*z))


def test_authors_s_is_computed_once_from_clean_clips_and_fixed(overrides, tiny_teachers, tiny_synth, tiny_spec,
                                                               monkeypatch):
    seen_s, sizes, prepared = _trace_run(overrides, tiny_teachers, monkeypatch, "authors")
    assert len(prepared) == 1                                       # once, before training
    for video, values in seen_s.items():
        assert len(set(values)) == 1 and values[0] == pytest.approx(prepared[0][video])  # same s every epoch
    assert max(len(v) for v in seen_s.values()) >= 2                # ... and videos were seen more than once
    video = next(iter(seen_s))
    assert prepared[0][video] == pytest.approx(_hand_s(tiny_synth, tiny_spec, tiny_teachers, video), abs=1e-5)
    assert set(sizes) == {4}                                        # 4 labeled, then 4 unlabeled clips


def test_paper_s_follows_the_steps_clips_in_one_pass(overrides, tiny_teachers, monkeypatch):
    seen_s, sizes, prepared = _trace_run(overrides, tiny_teachers, monkeypatch, "paper")
    assert prepared == []
    assert any(len(set(v)) > 1 for v in seen_s.values())            # random clips: s moves between epochs
    assert set(sizes) == {8}                                        # [labeled | unlabeled] in one pass
