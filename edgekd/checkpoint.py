"""The checkpoint contract: one `checkpoint.pt` rebuilds the student without the original command.

Layout (all plain types, loadable with `torch.load(weights_only=True)`):

    {
      "edgekd_version": str,
      "kind": "edgekd-student",
      "student": {"name": str, "kwargs": dict},      # students.build_student(name, **kwargs)
      "state_dict": {str: Tensor},
      "data_spec": DataSpec as dict,                   # frames, size, mean, std, class_names
      "config": dict,                                  # the resolved run config
      "metrics": dict,                                 # last/best metrics
      "train_state": dict | None,                      # optimizer, scheduler, RNG, epoch, best...
    }
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd import __version__
from edgekd.data.spec import DataSpec
from edgekd.errors import CheckpointError
from edgekd.io import atomic_path, load_torch_file

KIND = "edgekd-student"
CHECKPOINT_HINT = ("pass a run folder or checkpoint.pt written by `edgekd distill`; if the run was cut off, "
                   "train it again (edgekd distill --name NEW)")

def save_checkpoint(path: str | Path, *, student_name: str, student_kwargs: dict[str, Any],
                    state_dict: dict[str, Any], data_spec: DataSpec, config: dict[str, Any],
                    metrics: dict[str, Any], train_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temp file + rename), so a crash keeps the previous one."""
    import torch

    payload = {
        "edgekd_version": __version__,
        "kind": KIND,
        "student": {"name": student_name, "kwargs": dict(student_kwargs)},
        "state_dict": state_dict,
        "data_spec": data_spec.to_dict(),
        "config": config,
        "metrics": metrics,
        "train_state": train_state,
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def resolve_checkpoint_path(path: str | Path) -> Path:
    """Accept a run folder (runs/NAME) or the checkpoint file itself."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}",
                              "pass a run folder written by `edgekd distill` or its checkpoint.pt")
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a checkpoint (weights_only: no code runs from the file)."""
    path = resolve_checkpoint_path(path)
    ckpt = load_torch_file(path, CheckpointError, "an edgekd checkpoint", CHECKPOINT_HINT)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != KIND:
        raise CheckpointError(f"{path} is not an edgekd checkpoint (or is damaged)", CHECKPOINT_HINT)
    return ckpt


def build_student_from_checkpoint(ckpt: dict[str, Any]):
    """Rebuild the student network with its weights; returns (model in eval mode, DataSpec)."""
    from edgekd.students import build_student

    spec = DataSpec.from_dict(ckpt["data_spec"])
    name = ckpt["student"]["name"]
    model = build_student(name, **ckpt["student"]["kwargs"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint weights do not fit student {name!r}: {str(e).splitlines()[0]}",
                              "the checkpoint was written for another student configuration") from e
    return model.eval(), spec
