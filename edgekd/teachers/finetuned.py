"""A fine-tuned teacher folder (type "finetuned"): its base teacher plus the head trained on the labeled split.

The folder holds the base teacher's spec plus the head (mode "linear") or all weights ("full");
edgekd.pretrain.finetune writes it. Loading rebuilds the base with `load_teacher` and refuses a
base whose weights changed since the head was trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from edgekd.data.spec import DataSpec
from edgekd.errors import TeacherError
from edgekd.teachers.loading import load_weights_into, read_teacher_weights

TYPE = "finetuned"


def from_folder(folder: Path, meta: dict[str, Any], data_spec: DataSpec):
    """Rebuild a fine-tuned teacher: its base via load_teacher, then the head (and weights)."""
    from edgekd.teachers.loading import load_teacher

    cfg = meta["config"]
    base = cfg["base"]
    if not Path(base).exists() and cfg.get("base_relative") and (Path(folder) / cfg["base_relative"]).exists():
        base = str((Path(folder) / cfg["base_relative"]).resolve())
    if str(base) == str(Path(folder).resolve()):
        raise TeacherError(f"{folder} names itself as its base teacher", "re-run `edgekd teacher finetune`")
    try:
        teacher = load_teacher(base, data_spec, probe=False)
    except TeacherError as e:
        raise TeacherError(f"the base teacher of {folder} cannot be loaded: {e.message}",
                           "restore the base teacher where it was, or fine-tune again") from e
    if cfg["mode"] == "linear" and teacher.fingerprint != cfg["base_fingerprint"]:
        raise TeacherError(f"the base teacher {base} changed since the head in {folder} was trained "
                           f"(fingerprint {teacher.fingerprint} != {cfg['base_fingerprint']})",
                           "fine-tune again: `edgekd teacher finetune`")
    teacher.attach_head(nn.Linear(int(cfg["embed_dim"]), int(cfg["num_classes"])), int(cfg["num_classes"]))
    state = read_teacher_weights(folder, meta)
    if cfg["mode"] == "linear":
        load_weights_into(teacher.head, {k[len("head."):]: v for k, v in state.items()}, folder)
    else:
        load_weights_into(teacher, state, folder)
    teacher.class_names = tuple(cfg["class_names"])
    teacher.source = str(folder)
    teacher.metrics = meta.get("metrics", {})
    return teacher.freeze()
