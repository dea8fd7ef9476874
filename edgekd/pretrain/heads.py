"""A classifier head over the data's classes for a teacher brought from outside (Hugging Face, open_clip).

A distill recipe that reads class predictions (pseudo, kd, timebalance) needs them over the run's
classes. A teacher's own head serves when its labels are the data's (edgekd.teachers.hf_video);
otherwise:

    CLIP-style (a text tower)   the zero-shot classifier: logit_scale * the class prompt embeddings
                                (edgekd.pretrain.finetune.init_head), nothing trained
    any other (VideoMAE, ...)   a linear head fitted on the labeled split with `edgekd teacher
                                finetune`'s linear mode, written once as a teacher folder under
                                $EDGEKD_HOME/teachers/<dataset>-<split>/head-<teacher fingerprint>-<key>/
                                and reused by later runs on the same teacher, data and split

`teacher.head_source` says which head it got; the run header prints it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from edgekd.home import edgekd_home
from edgekd.io import atomic_folder
from edgekd.pretrain.embedded_config import resolve_split, split_fingerprint
from edgekd.pretrain.finetune import FinetuneConfig, finetune_teacher, init_head
from edgekd.report import Reporter

FIT = FinetuneConfig(mode="linear", epochs=100, clips_per_video=2, init_from_text=False)


def head_folder(teacher, manifest, split, spec, cfg: FinetuneConfig) -> Path:
    blob = json.dumps({"finetune": repr(cfg), "spec": spec.to_dict()}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:10]
    return (edgekd_home() / "teachers" / f"{manifest.fingerprint()}-{split_fingerprint(split)}"
            / f"head-{teacher.fingerprint}-{key}")


def _load_head(teacher, folder: Path) -> None:
    from torch import nn

    from edgekd.teachers.loading import load_weights_into, read_teacher_meta, read_teacher_weights

    folder, meta = read_teacher_meta(folder)
    c = meta["config"]
    head = nn.Linear(int(c["embed_dim"]), int(c["num_classes"]))
    state = read_teacher_weights(folder, meta)
    load_weights_into(head, {k[len("head."):]: v for k, v in state.items()}, folder)
    teacher.attach_head(head.to(next(teacher.parameters()).device), int(c["num_classes"]))
    teacher.freeze()


def fit_head(teacher, manifest, split, spec, *, workers: int = 0, reporter: Reporter | None = None,
             cfg: FinetuneConfig = FIT) -> Path:
    """Fit (or reuse) a linear head on the split's labeled videos; attach it to `teacher`."""
    reporter = reporter or Reporter.quiet()
    split = resolve_split(manifest, split)
    folder = head_folder(teacher, manifest, split, spec, cfg)
    if not (folder / "teacher.json").is_file():
        labeled, _ = split.apply(manifest)
        reporter.print(f"fitting a head for {teacher.source} on {len(labeled)} labeled videos into {folder}")
        source = teacher.source
        folder.parent.mkdir(parents=True, exist_ok=True)
        with atomic_folder(folder) as tmp:
            finetune_teacher(teacher, labeled, spec, tmp, cfg, quiet=not reporter.enabled, log=reporter.print,
                             num_workers=workers)
        teacher.source = source  # finetune_teacher points it at the temp folder
    _load_head(teacher, folder)
    teacher.head_source = f"fitted on the labeled split, {folder}"
    return folder


def zeroshot_head(teacher, spec, templates) -> None:
    """A CLIP-style teacher's zero-shot classifier over the data's class names, as its head."""
    head = init_head(teacher, spec.class_names, FinetuneConfig(templates=tuple(templates)))
    teacher.attach_head(head.to(next(teacher.parameters()).device), spec.num_classes)
    teacher.freeze()
    teacher.head_source = f"zero-shot prompts ({spec.num_classes} classes)"


def provide_head(teacher, manifest, split, spec, *, templates, workers: int = 0,
                 reporter: Reporter | None = None) -> None:
    """Give an outside teacher a head over the data's classes when it has none (see the module doc)."""
    if getattr(teacher, "head", None) is not None and teacher.num_classes == spec.num_classes:
        return
    if hasattr(teacher, "class_text_embeddings") and getattr(teacher, "head", None) is None:
        zeroshot_head(teacher, spec, templates)
    elif hasattr(teacher, "model_labels") and getattr(teacher, "head", None) is None:  # edgekd.teachers.hf_video
        fit_head(teacher, manifest, split, spec, workers=workers, reporter=reporter)
