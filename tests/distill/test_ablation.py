"""The ablation: its claim checks, its table, reuse of finished runs; the teacher-target measurement."""

from __future__ import annotations

import json

import torch

from edgekd.distill import ablation
from edgekd.distill.config import load_config
from edgekd.distill.data import prepare_data
from edgekd.distill.teacher_bank import TeacherBank
from edgekd.distill.teacher_targets import measure_targets


def _results(top1: dict[str, float]) -> dict:
    runs = [{"recipe": r, "labeled": 0.1, "seed": 0, "top1": v} for r, v in top1.items()]
    res = {"fractions": [0.1], "recipes": list(top1), "seeds": [0], "runs": runs, "seconds": 60.0}
    res["table"] = ablation._table(res)
    res["checks"] = ablation._checks(res)
    return res


def test_claims_follow_the_papers_orderings():
    res = _results({"supervised": 0.20, "feature": 0.30, "feature+pseudo": 0.25, "timebalance-one": 0.40,
                    "timebalance-avg": 0.40, "timebalance": 0.35})
    holds = {c["claim"]: c["holds"] for c in res["checks"]}
    assert holds["feature > supervised"] and holds["timebalance > supervised"]
    assert not holds["feature+pseudo >= feature"]                      # 0.25 < 0.30
    assert holds["timebalance-avg >= timebalance-one"]                 # ties count as agreement ...
    assert not holds["timebalance >= timebalance-avg"]
    tie = _results({"supervised": 0.2, "kd": 0.2})
    assert tie["checks"] == [{"claim": "kd > supervised", "labeled": 0.1, "holds": False, "delta": 0.0}]  # ... not vs supervised
    md = ablation.markdown(res)
    assert "| feature | 30.0 (+10.0) |" in md and "| feature+pseudo >= feature | 10% | **no** | -5.0 |" in md


def test_run_ablation_writes_tables_and_reuses_finished_runs(overrides, tmp_path):
    keep = [o for o in overrides if not o.startswith(("run.dir", "run.name", "data.labeled", "train.epochs"))]
    out = tmp_path / "abl"
    first = ablation.run_ablation([0.5], ["supervised"], epochs=1, out=out, overrides=keep)
    (run,) = first["runs"]
    assert run["recipe"] == "supervised" and run["epochs"] == 1 and 0 <= run["top1"] <= 1
    saved = json.loads((out / "ablation.json").read_text())
    assert saved["table"]["supervised"]["0.5"]["mean"] == run["top1"]
    assert "| supervised | " in (out / "ablation.md").read_text()
    stamp = (out / "supervised-50pct-s0" / "checkpoint.pt").stat().st_mtime_ns
    again = ablation.run_ablation([0.5], ["supervised"], epochs=1, out=out, overrides=keep)
    assert again["runs"][0]["top1"] == run["top1"]
    assert (out / "supervised-50pct-s0" / "checkpoint.pt").stat().st_mtime_ns == stamp   # not retrained


def test_teacher_targets_are_the_recipes_targets(overrides, tiny_teachers):
    cfg = load_config(None, overrides + ["recipe.timebalance.clips=2"])
    data = prepare_data(cfg)
    bank = TeacherBank({k: tiny_teachers[k] for k in ("vl", "invariant", "distinctive")})
    r = measure_targets(cfg, bank, data, batch_size=2)
    groups = r["groups"]
    assert r["videos"] == len(data.test) and groups["all"]["videos"] == len(data.test)
    kinds = data.manifest.meta["temporal_kind"]
    assert set(groups) == {"all", *(kinds[c] for c in data.spec.class_names)}
    assert sum(g["videos"] for k, g in groups.items() if k != "all") == len(data.test)
    assert -1.0 <= groups["all"]["s_mean"] <= 1.0                      # a mean of cosines (unclamped)
    # recomputed by hand: the invariant teacher's own top-1 on the first of the n uniform clips
    from edgekd.data.dataset import ClipDataset

    test = ClipDataset(data.test, data.spec, mode="eval", clips_per_video=2)
    with torch.no_grad():
        hits = [int(tiny_teachers["invariant"].logits(test[i]["video"][:1]).argmax()) == test[i]["label"]
                for i in range(len(test))]
    assert groups["all"]["timebalance-one"] == sum(hits) / len(hits)
    assert {"timebalance-avg", "timebalance", "distinctive", "vl"} <= set(groups["all"])
