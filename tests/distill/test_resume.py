"""Mid-epoch resume with augmentation on: a real tiny3d run interrupted and resumed equals the
uninterrupted run, and the resumed epoch's logged loss is the mean of the steps that epoch ran."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.distill import train as train_mod
from edgekd.distill.config import load_config
from edgekd.distill.train import distill, read_metrics


REAL_STEP = train_mod._train_step


def _record_steps(monkeypatch, interrupt_at: int | None = None) -> list[float]:
    """Wrap _train_step: record each step's total loss; raise KeyboardInterrupt once, at call `interrupt_at`."""
    real, losses, calls = REAL_STEP, [], []

    def step(*a, **k):
        calls.append(1)
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        terms, stats, n = real(*a, **k)
        losses.append(sum(terms.values()))
        return terms, stats, n

    monkeypatch.setattr(train_mod, "_train_step", step)
    return losses


def test_mid_epoch_resume_with_augmentation_equals_the_uninterrupted_run(overrides, monkeypatch):
    # augmentation on (random clip starts + crop/jitter), dropout on, a labeled and an unlabeled stream
    base = [o for o in overrides if not o.startswith("data.augment")] + [
        "data.augment=true", "recipe.name=supervised", "train.epochs=2"]
    full_steps = _record_steps(monkeypatch)
    full = distill(load_config(None, base + ["run.name=full"]))
    spe = len(full_steps) // 2
    assert spe == 3

    # interrupted at epoch 1 step 2, resumed with 2 loader workers (the uninterrupted run had none)
    part_steps = _record_steps(monkeypatch, interrupt_at=2)
    cfg = load_config(None, base + ["run.name=part"])
    with pytest.raises(KeyboardInterrupt):
        distill(cfg)
    assert len(part_steps) == 1
    cfg_workers = load_config(None, base + ["run.name=part", "data.workers=2"])
    distill(cfg_workers, resume=cfg.run.dir + "/part")
    part = full.parent / "part"

    a = torch.load(full / "checkpoint.pt", weights_only=True)["state_dict"]
    b = torch.load(part / "checkpoint.pt", weights_only=True)["state_dict"]
    dw = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    assert dw <= 1e-6, f"max |dw| = {dw:.3g}"

    # every step's loss replays, and each epoch's logged loss is the mean of its steps (numpy)
    np.testing.assert_allclose(part_steps, full_steps, rtol=0, atol=1e-6)
    for m, run_steps in ((read_metrics(full), full_steps), (read_metrics(part), part_steps)):
        assert [x["epoch"] for x in m] == [1, 2]
        expected = [np.mean(run_steps[e * spe:(e + 1) * spe]) for e in range(2)]
        np.testing.assert_allclose([x["loss"] for x in m], expected, rtol=1e-6)
