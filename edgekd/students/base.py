"""The interface every student honours, and the registry that names them.

Input is (B, 3, T, H, W) float, normalized with the run's mean/std.
    forward_temporal(x) -> (B, T', D)   features before temporal pooling (T' may be < T)
    forward_features(x) -> (B, D)       clip embedding = mean over T'
    forward_head(f)     -> (B, C)       class logits
    forward(x)          -> (B, C)

A streaming student (`streams` is True) also runs one frame at a time with explicit state:
    stream_state(batch, size)     -> [zero buffer, ...]   starts a stream
    forward_frame(frame, state)   -> (logits (N, C), new state)   frame (N, 3, H, W)
and the mean of its per-frame logits over a clip equals forward(clip).

Every family module registers factories `(num_classes, frames, size, **kwargs) -> Student` in
STUDENTS. `build_student` stores the arguments it was called with on `model.config`, so a
checkpoint that saves `model.config` rebuilds the identical network with `build_student(name, **config)`.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import nn

from edgekd.errors import ConfigError
from edgekd.registry import Registry, did_you_mean


class Student(nn.Module):
    feature_dim: int
    num_classes: int
    config: dict[str, Any]  # {"num_classes", "frames", "size", **kwargs}: rebuilds this network
    streams: bool = False  # runs frame by frame (stream_state / forward_frame)

    def init_head(self, feature_dim: int, num_classes: int, dropout: float = 0.0) -> None:
        """The classifier every family shares: dropout (no weights) then one Linear."""
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, num_classes)

    def forward_temporal(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_temporal(x).mean(dim=1)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        dropout = getattr(self, "dropout", None)
        return self.head(dropout(f) if dropout is not None else f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# name -> factory(num_classes, frames, size, **family_kwargs) -> Student
STUDENTS: Registry[Callable[..., Student]] = Registry("student")


def check_option(student: str, key: str, value: Any, ok: bool, want: str) -> None:
    """Raise ConfigError naming the student and the option when `ok` is false."""
    if not ok:
        raise ConfigError(f"student {student!r}: {key} must be {want}, got {value!r}",
                          f"set {key} to {want} in the student options")


def check_scaling(student: str, width: float, depth: int | float, dropout: float) -> None:
    """The options most families share: width multiplier > 0, depth > 0, 0 <= dropout < 1."""
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    check_option(student, "width", width, number(width) and width > 0, "a number > 0")
    check_option(student, "depth", depth, number(depth) and depth > 0, "a number > 0")
    check_option(student, "dropout", dropout, number(dropout) and 0 <= dropout < 1, "a number in [0, 1)")


def _check_kwargs(name: str, factory: Callable[..., Student], kwargs: dict[str, Any]) -> None:
    """Unknown keyword -> ConfigError naming the student and the closest accepted keyword."""
    params = inspect.signature(factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [p for p in params if p not in ("num_classes", "frames", "size")]
    for key in kwargs:
        if key not in params:
            raise ConfigError(f"student {name!r} has no option {key!r}",
                              did_you_mean(key, accepted) if accepted else f"{name} takes no options")


def build_student(name: str, num_classes: int, frames: int, size: int, **kwargs) -> Student:
    """Build a registered student; `STUDENTS.names()` lists the choices."""
    from edgekd.students import load_families

    load_families()  # a caller that imported only this module still sees every family
    factory = STUDENTS.get(name)
    for key, value, low in (("num_classes", num_classes, 1), ("frames", frames, 1), ("size", size, 8)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"student {name!r}: {key} must be an integer >= {low}, got {value!r}")
    _check_kwargs(name, factory, kwargs)
    model = factory(num_classes=num_classes, frames=frames, size=size, **kwargs)
    model.config = {"num_classes": num_classes, "frames": frames, "size": size, **kwargs}
    return model
