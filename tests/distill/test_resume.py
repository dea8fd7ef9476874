"""Mid-epoch resume with augmentation on: a real tiny3d run interrupted and resumed equals the
uninterrupted run, and the resumed epoch's logged loss is the mean of the steps that epoch ran."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.distill import train as train_mod
from edgekd.distill.config import load_config
from edgekd.distill.data import prepare_data
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


def test_resume_with_broken_videos_in_both_streams_replays_the_uninterrupted_run(broken_ucf, overrides,
                                                                                 teacher_factory, monkeypatch):
    # labeled: 2 good videos per class and the truncated one; the text file is unlabeled. With 1 labeled
    # video per step, each epoch (7 steps, one pass over the labeled set) has one step without a labeled
    # clip. Plateau LR, augmentation, dropout, a KD teacher on labeled and unlabeled clips.
    data = broken_ucf
    split = data.split([v for v in data.good if v.endswith(("g02_c01.avi", "g03_c01.avi"))] + [data.bad["truncated"]])
    mine = ("data.path", "data.labeled", "data.augment", "train.batch_size", "train.epochs")
    base = [o for o in overrides if not o.startswith(mine)] + [
        f"data.path={data.dir}", f"data.split_file={split}", "data.frames=4", "data.size=32", "data.augment=true",
        "student.dropout=0.2", "recipe.name=kd", "train.batch_size=1", "train.unlabeled_batch_size=2",
        "train.epochs=4", "optim.schedule=plateau", "optim.plateau_patience=1", "optim.lr=5e-3", "train.seed=1"]
    cfg = load_config(None, base + ["run.name=full"])
    teachers = {"kd": teacher_factory(prepare_data(cfg).spec, 1)}
    full_steps = _record_steps(monkeypatch)
    full = distill(cfg, teachers=teachers)
    assert [m["optimizer_steps"] for m in read_metrics(full)] == [6] * 4

    # interrupted at the last but one optimizer step (epoch 4), resumed in a new call with fresh datasets
    part_steps = _record_steps(monkeypatch, interrupt_at=len(full_steps) - 1)
    cfg = load_config(None, base + ["run.name=part"])
    with pytest.raises(KeyboardInterrupt):
        distill(cfg, teachers=teachers)
    part = full.parent / "part"
    cut = torch.load(part / "checkpoint.pt", weights_only=True)["train_state"]
    assert cut["epoch"] == 3 and 0 < cut["step"] < cut["steps_per_epoch"]
    assert cut["epoch_steps"] == cut["step"] - 1  # the epoch's step without a labeled clip came before the cut
    assert cut["schedule"]["scale"] < 1  # the plateau halved the LR before the cut: resume must keep that
    monkeypatch.setattr(train_mod, "_train_step", REAL_STEP)
    rest = _record_steps(monkeypatch)
    distill(cfg, teachers=teachers, resume=part)

    for name in ("checkpoint.pt", "best.pt"):
        a = torch.load(full / name, weights_only=True)
        b = torch.load(part / name, weights_only=True)
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"]), name
    assert part_steps + rest == full_steps
    keys = ("loss", "lr", "top1", "best_top1", "best_epoch")
    m_full, m_part = read_metrics(full), read_metrics(part)
    assert [[m[k] for k in keys] for m in m_part] == [[m[k] for k in keys] for m in m_full]
    assert m_full[-1]["best_epoch"] < 4  # epoch 4 sets no record: a best forgotten at resume would show
    a, b = (torch.load(r / "checkpoint.pt", weights_only=True)["train_state"] for r in (full, part))
    assert (a["schedule"], a["best_top1"], a["best_epoch"]) == (b["schedule"], b["best_top1"], b["best_epoch"])
    # both broken videos are on record, though the resumed run never met the labeled one again
    assert (part / "skipped_videos.txt").read_text() == (full / "skipped_videos.txt").read_text()
    assert all(v in (full / "skipped_videos.txt").read_text() for v in data.bad.values())
