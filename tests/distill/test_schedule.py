"""Learning-rate schedule: warm-up, cosine, plateau halving, stage restart, state round trip."""

from __future__ import annotations

import math

import pytest

from edgekd.distill.config import OptimConfig
from edgekd.distill.schedule import Schedule


def test_linear_warmup_then_cosine_to_min():
    s = Schedule(OptimConfig(lr=1.0, warmup_epochs=1, schedule="cosine", min_lr_ratio=0.0), steps_per_epoch=4, epochs=3)
    assert [s.lr(i) for i in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])  # (s+1)/(warm+1)
    assert s.lr(4) == pytest.approx(1.0)                                       # cosine starts at lr
    assert s.lr(8) == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 8)))    # halfway through 8 steps
    assert s.lr(11) < s.lr(10) < s.lr(9)


def test_plateau_halves_after_patience_epochs_without_improvement():
    s = Schedule(OptimConfig(lr=1.0, warmup_epochs=0, schedule="plateau", plateau_patience=2), 5, 10)
    for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.92]):  # improves, then 2 epochs without
        s.epoch_end(epoch, loss)
    assert s.lr(20) == pytest.approx(0.5)
    state = s.state_dict()
    t = Schedule(OptimConfig(lr=1.0, warmup_epochs=0, schedule="plateau", plateau_patience=2), 5, 10)
    t.load_state_dict(state)
    assert t.lr(20) == s.lr(20) and t.state_dict() == state


def test_two_stage_recipes_restart_the_schedule():
    s = Schedule(OptimConfig(lr=1.0, warmup_epochs=1, schedule="cosine", min_lr_ratio=0.0), 2, 4, restart_epoch=2)
    stage1 = [s.lr(i) for i in range(4)]
    stage2 = [s.lr(i) for i in range(4, 8)]
    assert stage1 == pytest.approx(stage2)  # same warm-up + cosine over each 2-epoch stage
