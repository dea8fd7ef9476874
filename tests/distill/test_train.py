"""Short real trainings of tiny3d on the tiny synthetic dataset (real mp4 decoding, real backprop)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from edgekd.distill import losses
from edgekd.distill import train as train_mod
from edgekd.distill.config import load_config
from edgekd.distill.recipes import RECIPES
from edgekd.distill.train import distill, read_metrics
from edgekd.errors import DataError, TrainingDiverged


def weights(run_dir, name="checkpoint.pt"):
    return torch.load(run_dir / name, weights_only=True)["state_dict"]


def test_loss_decreases_and_run_folder_is_complete(overrides):
    cfg = load_config(None, overrides + ["recipe.name=supervised", "train.epochs=6", "optim.lr=3e-3"])
    run = distill(cfg)
    m = read_metrics(run)
    assert [x["epoch"] for x in m] == list(range(1, 7))
    assert m[-1]["loss"] < 0.8 * m[0]["loss"], [x["loss"] for x in m]
    assert {"top1", "top5", "clips_per_s", "lr", "loss_ce", "best_top1"} <= set(m[-1])
    assert (run / "config.toml").read_text() == cfg.to_toml()  # the resolved config, reloadable
    assert load_config(run / "config.toml") == cfg
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["student"]["name"] == "tiny3d" and ckpt["train_state"]["epoch"] == 6
    assert (run / "best.pt").is_file()


def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(overrides):
    base = overrides + ["recipe.name=supervised", "train.epochs=4", "optim.schedule=cosine", "optim.warmup_epochs=1"]
    full = distill(load_config(None, base + ["run.name=full"]))
    part = distill(load_config(None, base + ["run.name=part"]), stop_after=2)
    assert torch.load(part / "checkpoint.pt", weights_only=True)["train_state"]["epoch"] == 2
    part = distill(load_config(None, base + ["run.name=part"]), resume=part)
    a, b = weights(full), weights(part)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [m["loss"] for m in read_metrics(full)] == [m["loss"] for m in read_metrics(part)]


def test_ctrl_c_saves_a_checkpoint_mid_epoch_and_resume_finishes(overrides, monkeypatch):
    cfg = load_config(None, overrides + ["recipe.name=supervised", "train.epochs=2", "run.name=intr"])
    real, calls = train_mod._train_step, []

    def interrupted_step(*a, **k):
        calls.append(1)
        if len(calls) == 5:  # epoch 2 (3 steps per epoch), second step
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "_train_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        distill(cfg)
    run = cfg.run.dir + "/intr"
    state = torch.load(run + "/checkpoint.pt", weights_only=True)["train_state"]
    assert (state["epoch"], state["step"]) == (1, 1)  # in epoch index 1, one step done
    monkeypatch.setattr(train_mod, "_train_step", real)
    out = distill(cfg, resume=run)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["train_state"]["epoch"] == 2
    assert [m["epoch"] for m in read_metrics(out)] == [1, 2]


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(overrides, monkeypatch):
    cfg = load_config(None, overrides + ["recipe.name=supervised", "train.epochs=3", "run.name=nan"])
    run = distill(cfg, stop_after=1)
    digest = hashlib.sha256((run / "checkpoint.pt").read_bytes()).hexdigest()
    monkeypatch.setattr(losses, "cross_entropy", lambda logits, labels: logits.sum() * float("nan"))
    with pytest.raises(TrainingDiverged) as e:
        distill(cfg, resume=run)
    assert "epoch 2 step 1" in e.value.message and "intact" in e.value.message
    assert hashlib.sha256((run / "checkpoint.pt").read_bytes()).hexdigest() == digest
    assert len(read_metrics(run)) == 1


@pytest.mark.parametrize("recipe", RECIPES.names())
def test_every_recipe_trains(recipe, overrides, tiny_teachers):
    cfg = load_config(None, overrides + [f"recipe.name={recipe}", "train.epochs=2", "run.name=r"])
    run = distill(cfg, teachers=tiny_teachers)
    m = read_metrics(run)
    assert len(m) == 2 and all(torch.isfinite(torch.tensor(x["loss"])) for x in m)
    terms = {k for k in m[-1] if k.startswith("loss_")}
    expected = {"supervised": {"loss_ce"}, "feature": {"loss_ce"}, "pseudo": {"loss_ce", "loss_pseudo"},
                "feature+pseudo": {"loss_ce", "loss_pseudo"}, "kd": {"loss_ce", "loss_kd"}}.get(recipe, {"loss_ce", "loss_l2"})
    assert terms == expected
    if recipe in ("feature", "feature+pseudo"):
        assert m[0]["stage"] == 1 and set(k for k in m[0] if k.startswith("loss_")) == {"loss_feature"}
    if recipe == "timebalance":
        assert -1.0 <= m[-1]["s"] <= 1.0  # mean temporal-similarity score (Eq. 6), a mean of cosines


def test_teacher_cache_feeds_the_recipe(overrides, tiny_teachers, tiny_spec, tiny_synth, tmp_path):
    from edgekd.data.manifest import Manifest
    from edgekd.teachers.cache import build_cache

    train = Manifest.load(tiny_synth).split("train")
    cache = build_cache({"kd": tiny_teachers["kd"]}, train, tiny_spec, tmp_path / "cache", clips_per_video=1,
                        num_workers=0, progress=False)
    cfg = load_config(None, overrides + ["recipe.name=kd", f"teacher.cache={cache.path}", "train.epochs=1"])
    run = distill(cfg, teachers={"kd": tiny_teachers["kd"]})
    assert read_metrics(run)[0]["loss_kd"] > 0


def test_eval_multiview_writes_json_and_confusion_png(overrides, tiny_synth):
    from edgekd.distill.evaluate import evaluate_run

    run = distill(load_config(None, overrides + ["recipe.name=supervised", "train.epochs=1"]))
    r = evaluate_run(run, clips=2, crops=3, workers=0)
    assert r["num_videos"] == 4 and 0.0 <= r["top1"] <= r["top5"] <= 1.0
    assert r["protocol"]["clips"] == 2 and r["protocol"]["crops"] == 3
    assert sum(v["videos"] for v in r["per_class"].values()) == 4
    assert sum(map(sum, r["confusion"])) == 4
    assert json.loads((run / "eval.json").read_text())["top1"] == r["top1"]
    assert (run / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_epoch_without_one_optimizer_step_stops_with_a_data_error(overrides, broken_ucf):
    # the only labeled videos are the two that fail to decode: no step has a labeled clip
    data = broken_ucf
    cfg = load_config(None, [o for o in overrides if not o.startswith(("data.path", "data.labeled"))] + [
        f"data.path={data.dir}", f"data.split_file={data.split(list(data.bad.values()))}", "data.frames=4",
        "data.size=32", "recipe.name=supervised", "train.epochs=1", "run.name=nothing"])
    with pytest.raises(DataError, match="epoch 1 took no optimizer step: 2 of the 2 labeled videos") as e:
        distill(cfg)
    run = Path(cfg.run.dir) / "nothing"
    assert "edgekd data check" in e.value.hint and str(run / "skipped_videos.txt") in e.value.message
    assert read_metrics(run) == [] and not (run / "checkpoint.pt").exists()  # no epoch recorded as trained
    skipped = (run / "skipped_videos.txt").read_text()
    assert all(v in skipped for v in data.bad.values())
