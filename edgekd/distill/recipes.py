"""Recipes: which loss terms a run optimizes, on which clips, from which teachers.

Every training step sees one labeled batch and (when the recipe uses it) one unlabeled batch. The
student runs once on the concatenation  x = [labeled clips | unlabeled clips]  (B = Bl + Bu), or, for
a recipe with `separate_passes`, once on each part (own BatchNorm batch statistics, as the TimeBalance
authors run it); a recipe turns the student outputs and the frozen teachers' outputs into named,
weighted loss terms.

    supervised       CE on labeled clips (the baseline every report compares against)
    feature          stage 1: VL Eq. 1 feature MSE on all clips, labels unused; stage 2: CE
    pseudo           CE + VL Eq. 3 pseudo-label CE on unlabeled clips above a confidence threshold
    feature+pseudo   stage 1 as `feature`; stage 2: CE + pseudo-label CE (the VL paper's method)
    kd               CE + Hinton KD (T^2 * KL) on all clips, any teacher with a classifier (Camarena)
    timebalance      CE + w * L2(p_S, s*p_I + (1-s)*p_D) on all clips, s per video (TB Eqs. 6-8)
    timebalance-avg  the same with s = 0.5: two teachers averaged (TB Table 3 row d)
    timebalance-one  the same with the invariant teacher only (TB Table 3 row b)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

from edgekd.distill import losses
from edgekd.registry import Registry

if TYPE_CHECKING:
    from edgekd.distill.config import DistillConfig
    from edgekd.distill.teacher_bank import TeacherBank


@dataclass
class Batch:
    """One optimizer step's clips. Labeled clips come first in `x`."""

    x: torch.Tensor  # (B, 3, T, H, W) the clips the student sees, B = n_labeled + unlabeled
    labels: torch.Tensor  # (n_labeled,) class indices
    clips: torch.Tensor | None = None  # (B, n, 3, T, H, W) all n clips per video, x == clips[:, 0]
    video_ids: list[str] = field(default_factory=list)  # (B,) teacher-cache keys, with `starts`
    starts: torch.Tensor | None = None  # (B, n) clip start frames

    @property
    def n_labeled(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class StudentOut:
    features: torch.Tensor  # (B, Ds)
    logits: torch.Tensor  # (B, C)
    projected: torch.Tensor | None  # (B, Dt) features mapped to the teacher width (feature stages)


Terms = dict[str, torch.Tensor]  # weighted loss terms; their sum is the loss
Stats = dict[str, float]  # diagnostics for the progress bar and metrics.jsonl


class Recipe:
    """Base: the supervised term plus bookkeeping every recipe shares."""

    name = ""
    summary = ""
    roles: tuple[str, ...] = ()  # teacher roles (keys of [teacher]) the recipe needs
    head_roles: tuple[str, ...] = ()  # ... of which these must have a classifier head
    two_stage = False

    def __init__(self, cfg: "DistillConfig"):
        self.cfg = cfg
        epochs = cfg.train.epochs
        self.stage1_epochs = (cfg.recipe.stage1_epochs or max(1, epochs // 2)) if self.two_stage else 0

    def stage(self, epoch: int) -> int:
        """1 for the feature-distillation stage of two-stage recipes, else 2 (epoch counts from 0)."""
        return 1 if epoch < self.stage1_epochs else 2

    def clips_per_video(self) -> int:
        return 1

    def separate_passes(self) -> bool:
        """Run the student on the labeled and the unlabeled clips in two passes, not one."""
        return False

    def prepare(self, data, teachers: "TeacherBank", cfg: "DistillConfig", log=print) -> None:
        """Once before the first step, with the run's data (RunData) and teachers. Nothing by default."""

    def uses_unlabeled(self, stage: int) -> bool:
        return True

    def projects(self, stage: int) -> bool:
        """Whether the student's features go through the projector in this stage."""
        return False

    def make_projector(self, student, teachers: "TeacherBank") -> torch.nn.Module | None:
        """Trainable extras beside the student (the feature projector); None for most recipes."""
        return None

    def losses(self, out: StudentOut, batch: Batch, teachers: "TeacherBank", stage: int) -> tuple[Terms, Stats]:
        raise NotImplementedError

    def _ce(self, out: StudentOut, batch: Batch) -> torch.Tensor:
        return losses.cross_entropy(out.logits[: batch.n_labeled], batch.labels)


RECIPES: Registry[Callable[["DistillConfig"], Recipe]] = Registry("recipe")


def build_recipe(cfg: "DistillConfig") -> Recipe:
    return RECIPES.get(cfg.recipe.name)(cfg)


AUTO = "auto"  # recipe.name: chosen from what the data and teachers allow (choose_recipe)


def choose_recipe(cfg: "DistillConfig", manifest, unlabeled: int | None = None) -> tuple[str, str]:
    """(recipe name, why) for recipe.name = "auto"; `unlabeled`: how many train videos the split leaves unlabeled.

    feature+pseudo (the VL paper's method, best on the synthetic set) when the vision-language teacher
    has real language to stand on: the videos' captions, or a CLIP-style teacher given by path.
    Otherwise timebalance: its teachers learn from the unlabeled videos themselves, while a VL teacher
    built from class-name prompts knows no more than the few labeled videos. With no unlabeled video
    at all, kd: the teacher fine-tuned on the labels, distilled on the labeled clips (Hinton).
    """
    from edgekd.distill.teacher_bank import EMBEDDED
    from edgekd.pretrain.vl import has_captions

    if not cfg.teacher.vl.startswith(EMBEDDED):
        return "feature+pseudo", f"a vision-language teacher was given ({cfg.teacher.vl})"
    if has_captions(manifest):
        return "feature+pseudo", "the videos have captions for the vision-language teacher"
    if unlabeled == 0:
        return "kd", ("every train video is labeled (0 unlabeled), so nothing is left for the TimeBalance teachers "
                      "to learn from; kd distils the embedded teacher fine-tuned on the labels")
    return "timebalance", ("no captions in the data, so the TimeBalance teachers learn from the unlabeled videos; "
                           "--recipe feature+pseudo would build the VL teacher from class-name prompts")


@RECIPES.register("supervised")
class Supervised(Recipe):
    name = "supervised"
    summary = "CE on the labeled clips only (baseline)"

    def uses_unlabeled(self, stage: int) -> bool:
        return False

    def losses(self, out, batch, teachers, stage):
        return {"ce": self._ce(out, batch)}, {}


class _FeatureStage(Recipe):
    """Stage 1 of the VL paper (Sec. 3.1): regress the frozen VL teacher's embedding, labels unused."""

    roles = ("vl",)
    two_stage = True
    _stage2_unlabeled = False  # stage 2 of feature+pseudo also reads unlabeled clips

    def projects(self, stage):
        return stage == 1

    def make_projector(self, student, teachers):
        teacher_dim = int(teachers.teachers["vl"].embed_dim)
        return losses.make_projector(student.feature_dim, teacher_dim, self.cfg.recipe.feature.projector)

    def uses_unlabeled(self, stage):
        return stage == 1 or self._stage2_unlabeled

    def _feature(self, out, batch, teachers):
        emb = teachers.embed("vl", batch)                      # (B, Dt)
        f = self.cfg.recipe.feature
        return {"feature": f.weight * losses.feature_mse(out.projected, emb, normalize=f.normalize)}, {}


@RECIPES.register("feature")
class Feature(_FeatureStage):
    name = "feature"
    summary = "stage 1: VL feature MSE on all clips; stage 2: CE (VL Table 3 'no pseudo-labeling')"

    def losses(self, out, batch, teachers, stage):
        if stage == 1:
            return self._feature(out, batch, teachers)
        return {"ce": self._ce(out, batch)}, {}


def _ce_and_pseudo(recipe: Recipe, out: StudentOut, batch: Batch, teachers) -> tuple[Terms, Stats]:
    """CE on the labeled clips + VL Eq. 3 on the unlabeled ones the VL teacher is confident about."""
    terms, nl = {"ce": recipe._ce(out, batch)}, batch.n_labeled
    if out.logits.shape[0] == nl:  # no unlabeled clips this step
        return terms, {}
    p = recipe.cfg.recipe.pseudo
    t_logits = teachers.logits("vl", batch, start=nl)         # (Bu, C)
    loss, keep = losses.pseudo_label_ce(out.logits[nl:], t_logits, p.threshold)
    return {**terms, "pseudo": p.weight * loss}, {"keep": float(keep)}


@RECIPES.register("pseudo")
class Pseudo(Recipe):
    name = "pseudo"
    summary = "CE + pseudo-label CE on unlabeled clips the VL teacher is confident about (VL Eq. 3)"
    roles = ("vl",)
    head_roles = ("vl",)

    def losses(self, out, batch, teachers, stage):
        return _ce_and_pseudo(self, out, batch, teachers)


@RECIPES.register("feature+pseudo")
class FeaturePseudo(_FeatureStage):
    name = "feature+pseudo"
    summary = "stage 1: VL feature MSE; stage 2: CE + pseudo-label CE (the VL paper's method)"
    head_roles = ("vl",)
    _stage2_unlabeled = True

    def losses(self, out, batch, teachers, stage):
        if stage == 1:
            return self._feature(out, batch, teachers)
        return _ce_and_pseudo(self, out, batch, teachers)


@RECIPES.register("kd")
class KD(Recipe):
    name = "kd"
    summary = "CE + T^2 * KL(teacher/T || student/T) on all clips (Hinton; Camarena)"
    roles = ("kd",)
    head_roles = ("kd",)

    def losses(self, out, batch, teachers, stage):
        k = self.cfg.recipe.kd
        t_logits = teachers.logits("kd", batch)               # (B, C)
        return {"ce": self._ce(out, batch),
                "kd": k.weight * losses.hinton_kd(out.logits, t_logits, k.temperature)}, {}


@RECIPES.register("timebalance")
class TimeBalance(Recipe):
    name = "timebalance"
    summary = "CE + w * L2(p_S, s*p_I + (1-s)*p_D) on all clips, s from Eq. 6 (TimeBalance)"
    roles = ("invariant", "distinctive")
    head_roles = ("invariant", "distinctive")
    s_by_video: dict[str, float] | None = None  # "authors": s fixed per video before training (prepare)

    @property
    def authors(self) -> bool:
        return self.cfg.recipe.timebalance.fidelity == "authors"

    def clips_per_video(self):
        # "authors": the student sees one clip and s is read per video; "paper": s from the step's n clips
        return 1 if self.authors else self.cfg.recipe.timebalance.clips

    def separate_passes(self):
        return self.authors

    def prepare(self, data, teachers, cfg, log=print):
        """"authors": s of every training video once (Alg. 1 line 16), from n back-to-back clips."""
        if not self.authors:
            return
        from edgekd.distill.timebalance_scores import video_scores

        videos = [m for m in (data.labeled, data.unlabeled) if len(m.entries)]
        self.s_by_video = video_scores(teachers.teachers["invariant"], teachers.teachers["distinctive"], videos,
                                       data.spec, cfg.recipe.timebalance.clips, backend=cfg.data.backend,
                                       workers=cfg.data.workers)
        s = torch.tensor(list(self.s_by_video.values()))
        log(f"TimeBalance s (Eq. 6) fixed for {len(s)} videos from {cfg.recipe.timebalance.clips} back-to-back "
            f"clips each: mean {s.mean():.3f}, min {s.min():.3f}, max {s.max():.3f}")

    def scores(self, batch: Batch, teachers) -> torch.Tensor:
        """s of Eq. 6 per video (B,): the fixed per-video score when prepared ("authors"), otherwise from
        both teachers' projections (Eq. 5) of the batch's n clips per video."""
        from edgekd.teachers.timebalance import projected, temporal_similarity

        if self.s_by_video is not None and batch.video_ids:
            from edgekd.distill.timebalance_scores import lookup

            return lookup(self.s_by_video, batch.video_ids).to(batch.x.device)
        z = [projected(teachers.teachers[role], teachers.embed_clips(role, batch)[0])   # (B, n, d)
             for role in ("invariant", "distinctive")]
        return temporal_similarity(*z)

    def teacher_target(self, batch: Batch, teachers) -> tuple[torch.Tensor, Stats]:
        # Eq. 6 on the n clips of each video (or the fixed s), Eq. 7 on the clip the student sees (clip 0).
        s = self.scores(batch, teachers)                                       # (B,)
        p_i = teachers.embed_clips("invariant", batch)[1].softmax(-1)          # (B, C)
        p_d = teachers.embed_clips("distinctive", batch)[1].softmax(-1)
        return losses.mix_teachers(p_i, p_d, s, clamp=not self.authors), {"s": float(s.float().mean())}

    def losses(self, out, batch, teachers, stage):
        p_t, stats = self.teacher_target(batch, teachers)                 # (B, C) for every clip
        tb, nl = self.cfg.recipe.timebalance, batch.n_labeled
        w_l = tb.weight / 2 if tb.labeled_weight is None else tb.labeled_weight
        l2 = w_l * losses.timebalance_l2(out.logits[:nl], p_t[:nl])       # Eq. 8 on labeled videos too
        if out.logits.shape[0] > nl:
            l2 = l2 + tb.weight * losses.timebalance_l2(out.logits[nl:], p_t[nl:])
        return {"ce": self._ce(out, batch), "l2": l2}, stats


@RECIPES.register("timebalance-avg")
class TimeBalanceAvg(TimeBalance):
    name = "timebalance-avg"
    summary = "TimeBalance with the two teachers averaged, s = 0.5 (TB Table 3 row d)"

    def clips_per_video(self):
        return 1

    def prepare(self, data, teachers, cfg, log=print):
        """No s to compute."""

    def teacher_target(self, batch, teachers):
        p_i = teachers.logits("invariant", batch).softmax(-1)
        p_d = teachers.logits("distinctive", batch).softmax(-1)
        return losses.mix_teachers(p_i, p_d, torch.full((p_i.shape[0],), 0.5, device=p_i.device)), {}


@RECIPES.register("timebalance-one")
class TimeBalanceOne(TimeBalance):
    name = "timebalance-one"
    summary = "TimeBalance with the invariant teacher only (TB Table 3 row b)"
    roles = ("invariant",)
    head_roles = ("invariant",)

    def clips_per_video(self):
        return 1

    def prepare(self, data, teachers, cfg, log=print):
        """No s to compute."""

    def teacher_target(self, batch, teachers):
        return teachers.logits("invariant", batch).softmax(-1), {}
