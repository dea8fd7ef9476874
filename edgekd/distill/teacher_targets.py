"""How good is the target each recipe distils towards? The teacher side of the ablation.

A student trained by distillation can at best learn its target. So for each teacher-driven recipe
this measures, on the test videos, the top-1 of the very target the recipe trains on (its
`teacher_target`, or the teacher's prediction for pseudo/kd), free of any student-training noise:

    pseudo, kd         p_VL                                (the fine-tuned VL teacher)
    timebalance-one    p_I                                 (TB Table 3 row b)
    timebalance-avg    (p_I + p_D) / 2                     (row d)
    timebalance        s * p_I + (1 - s) * p_D, s = Eq. 6  (row e, Eq. 7)

plus p_D alone and the mean temporal-similarity score s (Eq. 6). Where the dataset records each
class's temporal kind (the synthetic set: simple, repetitive, compound), everything is also split by
kind: the reweighting should give s higher on repetitive videos (more p_I) and lower on compound
ones (more p_D; TB Sec. 4.4, Fig. 4).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from edgekd.distill.recipes import Batch, build_recipe

TARGETS = ("timebalance-one", "timebalance-avg", "timebalance")


def _targets(cfg) -> dict[str, Any]:
    """recipe name -> Recipe for the TimeBalance family, configured like `cfg` otherwise."""
    return {name: build_recipe(dataclasses.replace(cfg, recipe=dataclasses.replace(cfg.recipe, name=name)))
            for name in TARGETS}


@torch.no_grad()
def measure_targets(cfg, teachers, data, batch_size: int = 16) -> dict[str, Any]:
    """Top-1 of every target on `data.test`, overall and per temporal kind; mean s per kind.

    teachers: a TeacherBank holding "invariant", "distinctive" and, if present, "vl".
    data: the run's RunData (edgekd.distill.data.prepare_data).
    """
    from edgekd.data.dataset import ClipDataset, make_loader

    recipes = _targets(cfg)
    n = cfg.recipe.timebalance.clips
    test = ClipDataset(data.test, data.spec, mode="eval", clips_per_video=n, backend=cfg.data.backend)
    loader = make_loader(test, batch_size=batch_size, shuffle=False, num_workers=cfg.data.workers)
    kinds_of = (data.manifest.meta or {}).get("temporal_kind", {})
    names = list(data.spec.class_names)
    hits: dict[str, list[torch.Tensor]] = {k: [] for k in (*TARGETS, "distinctive", "vl")}
    s_all, labels = [], []
    for item in loader:
        clips = item["video"]                                                  # (B, n, 3, T, H, W)
        batch = Batch(x=clips[:, 0], labels=item["label"][:0], clips=clips)    # no labeled part
        teachers.new_step()
        for name, recipe in recipes.items():
            p, _ = recipe.teacher_target(batch, teachers)                      # (B, C)
            hits[name].append(p.argmax(-1) == item["label"])
        s_all.append(recipes["timebalance"].scores(batch, teachers))          # (B,), memoised embeddings
        hits["distinctive"].append(teachers.logits("distinctive", batch).argmax(-1) == item["label"])
        if "vl" in teachers:
            hits["vl"].append(teachers.logits("vl", batch).argmax(-1) == item["label"])
        labels.append(item["label"])
    y = torch.cat(labels)
    s = torch.cat(s_all)
    kind = [kinds_of.get(names[i], "all") for i in y.tolist()]
    groups = {"all": torch.ones_like(y, dtype=torch.bool)}
    for k in sorted(set(kind) - {"all"}):
        groups[k] = torch.tensor([x == k for x in kind])
    out: dict[str, Any] = {"videos": int(y.numel()), "clips": n, "groups": {}}
    for g, mask in groups.items():
        row = {"videos": int(mask.sum()), "s_mean": float(s[mask].mean()),
               "s_std": float(s[mask].std()) if mask.sum() > 1 else 0.0}
        for name, h in hits.items():
            if h:
                row[name] = float(torch.cat(h)[mask].float().mean())
        out["groups"][g] = row
    return out


def teacher_targets(cfg, reporter=None) -> dict[str, Any]:
    """measure_targets with the run's teachers: teacher.invariant/.distinctive, and teacher.vl if set."""
    from types import SimpleNamespace

    from edgekd.distill.config import NO_TEACHER
    from edgekd.distill.data import prepare_data
    from edgekd.distill.teacher_bank import load_teachers

    data = prepare_data(cfg)
    roles = ("invariant", "distinctive") + (() if cfg.teacher.vl.strip().lower() in NO_TEACHER else ("vl",))
    needs = SimpleNamespace(name="teacher targets", roles=roles, head_roles=roles)  # what load_teachers checks
    return measure_targets(cfg, load_teachers(cfg, needs, data.manifest, data.split, data.spec,
                                                reporter=reporter), data)
