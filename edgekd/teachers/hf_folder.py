"""Shared by the open_clip / Hugging Face teachers (edgekd.teachers.vl, hf_video): strict loading of a
local model folder, its image size and preprocessing stats, and one-line error text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.errors import TeacherError


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


def as_size(size: Any) -> int:
    """open_clip/HF image sizes come as int, (h, w) or {"height": h, "width": w} / {"shortest_edge": s}."""
    if isinstance(size, dict):
        size = size.get("height") or size.get("shortest_edge") or next(iter(size.values()))
    if isinstance(size, (list, tuple)):
        size = size[0]
    return int(size)


def preprocessor_stats(folder: Path, size: Any, mean, std, files=("preprocessor_config.json",)) -> tuple[int, tuple, tuple]:
    """(frame size, mean, std) from the first preprocessor file in `folder` (its crop size, else size, and
    image stats), else the given defaults."""
    import json

    for name in files:
        if (folder / name).is_file():
            pp = json.loads((folder / name).read_text())
            size = pp.get("crop_size") or pp.get("size") or size
            mean, std = pp.get("image_mean", mean), pp.get("image_std", std)
            break
    return as_size(size), tuple(float(v) for v in mean), tuple(float(v) for v in std)


def hf_model(folder: Path, class_name: str):
    """from_pretrained on a local folder; refuses missing/unexpected/mis-shaped weights."""
    import transformers

    cls = getattr(transformers, class_name)
    try:
        model, info = cls.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
    except Exception as e:  # noqa: BLE001
        raise TeacherError(f"weights in {folder} do not fit {class_name}: {first_line(e)}",
                           "the folder's config.json must describe the architecture its weights were saved from") from e
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "mismatched_keys", "error_msgs")}
    if bad:
        detail = "; ".join(f"{k}: {sorted(map(str, v))[:3]}" for k, v in bad.items())
        raise TeacherError(f"weights in {folder} do not match {class_name}: {detail}",
                           "the folder's config.json must describe the architecture its weights were saved from")
    return model.eval()
