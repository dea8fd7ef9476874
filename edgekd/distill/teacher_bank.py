"""The frozen teachers of a run, by role, and their outputs for one training step.

Roles are the keys of the [teacher] config table: "vl" (feature / pseudo), "kd", "invariant" and
"distinctive" (TimeBalance). Two roles with the same spec share one teacher object, and within a
step each teacher runs at most once per kind of output (`new_step` clears that memo).

Everything is checked when the bank is built, before any training: a recipe whose teacher is
"none", a teacher without the classifier head a recipe needs, a head over different classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from edgekd.distill.config import NO_TEACHER
from edgekd.errors import ConfigError, TeacherError
from edgekd.report import Reporter

if TYPE_CHECKING:
    from edgekd.data.spec import DataSpec
    from edgekd.distill.recipes import Batch, Recipe
    from edgekd.teachers.base import Teacher

EMBEDDED = "embedded:"


def _head_logits(teacher: "Teacher", emb: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits from an embedding already computed, unless the teacher overrides `logits`."""
    from edgekd.teachers.base import Teacher

    if type(teacher).logits is Teacher.logits and teacher.head is not None:
        return teacher.head(emb).float()
    return teacher.logits(x)


class TeacherBank:
    """role -> frozen Teacher; outputs computed live, or read from a TeacherCache when one is given.

    A cache (edgekd.teachers.cache) holds each teacher's outputs on fixed clips, keyed by
    (video id, clip start); `cache_names` maps roles to the teacher names inside it.
    """

    def __init__(self, teachers: dict[str, "Teacher"], cache: Any = None,
                 cache_names: dict[str, str] | None = None):
        self.teachers = teachers
        self.cache = cache
        self.cache_names = cache_names or {}
        self._memo: dict[tuple, Any] = {}

    def __contains__(self, role: str) -> bool:
        return role in self.teachers

    def to(self, device: torch.device) -> "TeacherBank":
        for t in {id(t): t for t in self.teachers.values()}.values():
            t.to(device).eval()
        return self

    def new_step(self) -> None:
        self._memo.clear()

    def _cached(self, role: str, kind: str, batch: "Batch", start: int, all_clips: bool) -> torch.Tensor:
        starts = batch.starts[start:] if all_clips else batch.starts[start:, 0]
        out = self.cache.get(self.cache_names[role], kind, batch.video_ids[start:], starts)
        return out.to(batch.x.device)

    def _run(self, role: str, batch: "Batch", start: int) -> tuple:
        """(embedding (B, D), logits (B, C) or None) of `role`'s teacher on the clips x[start:]."""
        teacher = self.teachers[role]
        key = (id(teacher), "x", start)
        if key not in self._memo:
            with torch.no_grad():
                if self.cache is not None:
                    emb = self._cached(role, "embed", batch, start, False)
                    logits = self._cached(role, "logits", batch, start, False) if teacher.num_classes else None
                else:
                    x = batch.x[start:]
                    emb = teacher.embed(x)                                   # (B, D)
                    logits = _head_logits(teacher, emb, x) if teacher.num_classes else None
            self._memo[key] = (emb, logits)
        return self._memo[key]

    def embed(self, role: str, batch: "Batch", start: int = 0) -> torch.Tensor:
        return self._run(role, batch, start)[0]

    def logits(self, role: str, batch: "Batch", start: int = 0) -> torch.Tensor:
        return self._run(role, batch, start)[1]

    def embed_clips(self, role: str, batch: "Batch") -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of all n clips per video (B, n, D) and the logits of clip 0 (B, C)."""
        teacher = self.teachers[role]
        key = (id(teacher), "clips", 0)
        if key not in self._memo:
            with torch.no_grad():
                if self.cache is not None:
                    emb = self._cached(role, "embed", batch, 0, True)            # (B, n, D)
                    logits = self._cached(role, "logits", batch, 0, False)        # (B, C)
                else:
                    clips = batch.clips if batch.clips is not None else batch.x.unsqueeze(1)
                    B, n = clips.shape[:2]
                    emb = teacher.embed(clips.flatten(0, 1)).view(B, n, -1)      # (B, n, D)
                    logits = _head_logits(teacher, emb[:, 0], clips[:, 0])        # (B, C)
            self._memo[key] = (emb, logits)
        return self._memo[key]


def _check_teacher(role: str, teacher: "Teacher", recipe: "Recipe", spec: "DataSpec", source: str) -> None:
    name = f"teacher.{role} ({source})"
    if role in recipe.head_roles:
        if getattr(teacher, "head", None) is None or not teacher.num_classes:
            raise TeacherError(f"recipe {recipe.name!r} needs class predictions but {name} has no classifier head",
                               "fine-tune it on the labeled split first: `edgekd teacher finetune`")
        if teacher.num_classes != spec.num_classes:
            raise TeacherError(f"{name} predicts {teacher.num_classes} classes, the dataset has {spec.num_classes}",
                               "use a teacher fine-tuned on this dataset's classes")
    if not getattr(teacher, "embed_dim", None):
        raise TeacherError(f"{name} does not report its embedding width (embed_dim)",
                           "teachers must set embed_dim; see edgekd.teachers.base.Teacher")


def load_teachers(cfg, recipe: "Recipe", manifest, split, spec: "DataSpec",
                  given: dict[str, "Teacher"] | None = None, reporter: Reporter | None = None,
                  device: str = "cpu") -> TeacherBank:
    """Load the teachers `recipe` needs; embedded ones are built on `device` on first use for this
    dataset and split (edgekd.pretrain.embedded), and only those the recipe's roles name.

    `given` maps roles to ready Teacher objects (API and tests); other roles load from their spec.
    """
    specs = {}
    for role in recipe.roles:
        if given and role in given:
            continue
        spec_str = getattr(cfg.teacher, role)
        if spec_str.strip().lower() in NO_TEACHER:
            raise ConfigError(f"recipe {recipe.name!r} needs a teacher for role {role!r} but teacher.{role} is "
                              f"{spec_str!r}", f"pass --teacher {role}=PATH (a teacher folder or checkpoint), "
                              f"or --set teacher.{role}=embedded:{role if role != 'kd' else 'vl'}, "
                              "or use --recipe supervised")
        specs[role] = spec_str
    embedded_names = sorted({s[len(EMBEDDED):] for s in specs.values() if s.startswith(EMBEDDED)})
    embedded: dict[str, Teacher] = {}
    if embedded_names:
        from edgekd.pretrain.embedded import default_teachers
        from edgekd.pretrain.embedded_config import NAMES, EmbeddedConfig

        unknown = [n for n in embedded_names if n not in NAMES]
        if unknown:
            raise ConfigError(f"unknown embedded teacher {EMBEDDED + unknown[0]!r}",
                              "choose " + ", ".join(EMBEDDED + k for k in NAMES))
        config = EmbeddedConfig(vl_text=cfg.teacher.vl_text, vl={"templates": tuple(cfg.teacher.templates)},
                                ssl_fidelity=cfg.recipe.timebalance.fidelity)  # the SSL pair wired like the recipe
        embedded = default_teachers(manifest, split, spec, names=embedded_names, reporter=reporter, config=config,
                                    device=device)
    by_spec: dict[str, Teacher] = {}
    for spec_str in set(specs.values()):
        if spec_str.startswith(EMBEDDED):
            by_spec[spec_str] = embedded[spec_str[len(EMBEDDED):]]
        else:
            from edgekd.teachers import load_teacher

            by_spec[spec_str] = load_teacher(spec_str, spec)
    heads = {id(by_spec[s]): by_spec[s] for r, s in specs.items() if r in recipe.head_roles and not s.startswith(EMBEDDED)}
    if heads:  # outside teachers: their own head, CLIP zero-shot prompts, or one fitted on the labeled split
        from edgekd.pretrain.heads import provide_head

        for teacher in heads.values():
            provide_head(teacher.to(device), manifest, split, spec, templates=cfg.teacher.templates, workers=cfg.data.workers,
                         reporter=reporter)
    teachers = {**(given or {}), **{role: by_spec[s] for role, s in specs.items()}}
    teachers = {role: teachers[role] for role in recipe.roles}
    for role, teacher in teachers.items():
        teacher.freeze() if hasattr(teacher, "freeze") else teacher.eval()
        _check_teacher(role, teacher, recipe, spec, specs.get(role, "given"))
    if not cfg.teacher.cache or not teachers:
        return TeacherBank(teachers)
    return TeacherBank(teachers, *open_cache(cfg.teacher.cache, teachers, recipe, spec))


def open_cache(path: str, teachers: dict[str, "Teacher"], recipe: "Recipe", spec: "DataSpec"):
    """Open a TeacherCache for these teachers (fingerprints checked) -> (cache, role -> cached name).

    The cache stores outputs on fixed clips (uniformly spaced starts); the run then samples its
    training clips at exactly those starts, `clips_per_video` of them per video.
    """
    from edgekd.teachers.cache import TeacherCache

    probe = TeacherCache(path)
    names = {}
    for role in teachers:
        for candidate in (role, "vl" if role == "kd" else role, "teacher"):
            if candidate in probe.names:
                names[role] = candidate
                break
        else:
            raise TeacherError(f"teacher cache {path} holds no outputs for role {role!r} (it has {', '.join(probe.names)})",
                               f"build the cache with a teacher named {role!r}, or drop teacher.cache")
    n = recipe.clips_per_video()
    if probe.clips_per_video != n:
        raise ConfigError(f"teacher cache {path} has {probe.clips_per_video} clips per video; recipe "
                          f"{recipe.name!r} samples {n}", f"rebuild the cache with {n} clips per video")
    cache = TeacherCache.open(path, fingerprints={names[r]: t.fingerprint for r, t in teachers.items()},
                              data_spec=spec)
    return cache, names
