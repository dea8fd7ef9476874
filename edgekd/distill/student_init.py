"""`student.init`: start a student's backbone from a self-supervised teacher folder.

    state = read_backbone_init(path, "tiny3d", {"width": 0.5})   # checks the architecture, reads weights
    count = apply_backbone_init(student, state, path)             # every backbone tensor, or an error

A source is an edgekd teacher folder (edgekd.teachers.loading: teacher.json + weights.pt) whose
backbone is a registered student: what `edgekd pretrain` and `edgekd teacher pretrain --objective
pcl` write (edgekd.teachers.pcl) and the TimeBalance teachers (edgekd.teachers.ssl_teacher). Both
store the backbone under "backbone.net." and name it in teacher.json (config.backbone,
config.backbone_kwargs). The student's classifier is not in the folder and keeps its fresh init;
every other tensor must come from the file, so a silently half-loaded backbone cannot happen.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from edgekd.errors import ConfigError

BACKBONE_PREFIX = "backbone.net."
HEAD_PREFIXES = ("head.",)  # the student's classifier: trained downstream, never in a pretraining folder
NO_WEIGHTS = ("dropout",)   # student options that change no tensor, so a fine-tune may pick its own


def _fail(path: Path, message: str, hint: str) -> None:
    raise ConfigError(f"student.init {path}: {message}", hint)


def _resolved_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The family's defaults filled in, options without weights dropped: {} and {"width": 1.0} agree."""
    from edgekd.students import STUDENTS

    params = inspect.signature(STUDENTS.get(name)).parameters
    full = {k: p.default for k, p in params.items()
            if k not in ("num_classes", "frames", "size") and p.default is not inspect.Parameter.empty}
    full.update(kwargs)
    return {k: v for k, v in full.items() if k not in NO_WEIGHTS}


def read_backbone_init(path: str | Path, student: str, student_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The backbone state_dict in teacher folder `path`, after checking it was trained for `student`
    with the same weight-shaping options. Raises ConfigError (one line + the fix) otherwise."""
    from edgekd.errors import TeacherError
    from edgekd.teachers.loading import read_teacher_meta, read_teacher_weights

    path = Path(path)
    if not path.exists():
        _fail(path, "no such folder", "pass a folder written by `edgekd pretrain` or `edgekd teacher pretrain`")
    try:
        folder, meta = read_teacher_meta(path)
    except TeacherError as e:
        raise ConfigError(f"student.init: {e.message}", e.hint) from e
    cfg = meta.get("config") or {}
    if "backbone" not in cfg:
        _fail(folder, f"a {meta.get('type')!r} teacher has no registered-student backbone to start from",
              "pass a folder written by `edgekd pretrain` or `edgekd teacher pretrain --objective "
              "pcl|invariant|distinctive`")
    theirs = (cfg["backbone"], _resolved_kwargs(cfg["backbone"], cfg.get("backbone_kwargs") or {}))
    ours = (student, _resolved_kwargs(student, student_kwargs))
    if theirs != ours:
        _fail(folder, f"its backbone is {theirs[0]} {theirs[1]}, the student is {ours[0]} {ours[1]}",
              f"set student.name={theirs[0]} and the same options (--set student.KEY=VALUE), "
              f"or pretrain a {ours[0]} with `edgekd pretrain {ours[0]}`")
    if cfg.get("frames_in", "rgb") != "rgb":
        _fail(folder, f"its backbone was trained on {cfg['frames_in']!r} inputs (frame differences), "
                      "a student sees RGB frames", "pretrain with --frames-in rgb")
    try:
        state = read_teacher_weights(folder, meta)
    except TeacherError as e:
        raise ConfigError(f"student.init: {e.message}", e.hint) from e
    return {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}


def apply_backbone_init(student, state: dict[str, Any], path: str | Path) -> int:
    """Copy `state` into every non-classifier tensor of `student`; returns how many were loaded.

    Missing or extra names, or a shape that differs, raise ConfigError naming the file: a backbone
    must be loaded whole, never partly.
    """
    want = {k: v for k, v in student.state_dict().items() if not k.startswith(HEAD_PREFIXES)}
    missing, extra = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    shapes = [k for k in set(want) & set(state) if tuple(want[k].shape) != tuple(state[k].shape)]
    if missing or extra or shapes:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(extra)} extra (e.g. {extra[0]})" if extra else "",
                 f"{len(shapes)} of another shape (e.g. {sorted(shapes)[0]})" if shapes else ""]
        _fail(Path(path), "its backbone weights do not fit the student: " + ", ".join(p for p in parts if p),
              "the folder was written for another network; pretrain this student with `edgekd pretrain`")
    student.load_state_dict(state, strict=False)  # strict minus the classifier, checked above
    return len(want)
