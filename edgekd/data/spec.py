"""The data spec: what a model expects as input (frames, size, normalization, class names).

It travels in checkpoints, teacher folders and exported artifacts, so it sits low in the package:
data, teachers, checkpoint and runtime all read it from here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# Kinetics statistics, the usual default for video models.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What the model expects as input: (B, 3, frames, size, size), normalized by mean/std."""

    frames: int
    size: int
    class_names: tuple[str, ...]
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    frame_stride: int = 1  # decode every `frame_stride`-th frame when sampling a clip

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int, int]:
        return (batch, 3, self.frames, self.size, self.size)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        return cls(**d)
