"""Online TSM: past-only shift, and the frame-by-frame model computes the clip model's function."""

from __future__ import annotations

import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.students import build_student
from edgekd.students.mobilenet_tsm import online_shift


def _trained(run):
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint

    model, spec = build_student_from_checkpoint(load_checkpoint(run / "checkpoint.pt"))
    return model.eval(), spec


def _real_clips(tiny_synth, spec, n=4):
    from edgekd.runtime.evalset import build_evalset

    return torch.from_numpy(build_evalset(tiny_synth, spec, split="test", limit=n).x)


def _frame_by_frame(model, clips, state=None):
    """Mean of per-frame logits over the clip, from zero state (or `state`); returns (mean, state)."""
    state = state if state is not None else model.stream_state(len(clips), clips.shape[-1])
    logits = []
    for t in range(clips.shape[2]):
        out, state = model.forward_frame(clips[:, :, t], state)
        logits.append(out)
    return torch.stack(logits).mean(0), state


def test_online_shift_takes_the_past_only_with_a_zero_first_frame():
    b, t, c = 2, 4, 16
    x = torch.arange(b * t * c * 3 * 3, dtype=torch.float32).reshape(b * t, c, 3, 3) + 1
    y = online_shift(x, frames=t, fold=c // 8).reshape(b, t, c, 3, 3)
    x = x.reshape(b, t, c, 3, 3)
    torch.testing.assert_close(y[:, 1:, :2], x[:, :-1, :2])      # frame t sees t-1
    assert (y[:, 0, :2] == 0).all()
    torch.testing.assert_close(y[:, :, 2:], x[:, :, 2:])          # nothing else moves


def test_online_student_never_looks_at_future_frames():
    model = build_student("mobilenet_v3_small_tsm", 5, 4, 32, shift="online").eval()
    x = torch.randn(1, 3, 4, 32, 32, requires_grad=True)
    model.forward_temporal(x)[:, 1].sum().backward()             # features of frame 1
    per_frame = x.grad.abs().sum(dim=(0, 1, 3, 4))
    assert per_frame[0] > 0, "frame 1 ignores frame 0: no shift"
    assert per_frame[2:].abs().sum() == 0, "frame 1 depends on later frames"


def test_frame_by_frame_equals_the_clip_model_on_real_clips(online_tsm_run, tiny_synth):
    model, spec = _trained(online_tsm_run)
    clips = _real_clips(tiny_synth, spec)
    with torch.no_grad():
        clip_logits = model(clips)
        stream_logits, _ = _frame_by_frame(model, clips)
    # the weights were trained, so logits differ between clips and the check is not degenerate
    assert (clip_logits - clip_logits.mean(0)).abs().max() > 0.1
    torch.testing.assert_close(stream_logits, clip_logits, atol=1e-4, rtol=1e-4)


def test_a_stream_reset_equals_a_fresh_stream(online_tsm_run, tiny_synth):
    model, spec = _trained(online_tsm_run)
    clips = _real_clips(tiny_synth, spec, n=2)
    a, b = clips[:1], clips[1:]
    with torch.no_grad():
        fresh_b, _ = _frame_by_frame(model, b)
        _, after_a = _frame_by_frame(model, a)
        reset_b, _ = _frame_by_frame(model, b, model.stream_state(1, spec.size))
        carried_b, _ = _frame_by_frame(model, b, after_a)
    torch.testing.assert_close(reset_b, fresh_b, atol=1e-5, rtol=1e-5)
    assert (carried_b - fresh_b).abs().max() > 1e-3, "state from video a does not reach video b"


def test_offline_students_refuse_to_stream_and_other_families_have_no_shift():
    model = build_student("mobilenet_v3_small_tsm", 5, 4, 32)
    with pytest.raises(ConfigError, match="student.shift=online"):
        model.forward_frame(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ConfigError, match="shift"):
        build_student("mobilenet_v3_small_tsm", 5, 4, 32, shift="causal")
    with pytest.raises(ConfigError, match="no option 'shift'"):
        build_student("tiny3d", 5, 4, 32, shift="online")
