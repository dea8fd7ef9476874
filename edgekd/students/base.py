"""The interface every student honours, and the registry that names them.

Input is (B, 3, T, H, W) float, normalized with the run's mean/std.
    forward_temporal(x) -> (B, T', D)   features before temporal pooling (T' may be < T)
    forward_features(x) -> (B, D)       clip embedding = mean over T'
    forward_head(f)     -> (B, C)       class logits
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from edgekd.registry import Registry


class Student(nn.Module):
    feature_dim: int
    num_classes: int

    def forward_temporal(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_temporal(x).mean(dim=1)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# name -> factory(num_classes, frames, size, **family_kwargs) -> Student
STUDENTS: Registry[Callable[..., Student]] = Registry("student")


def build_student(name: str, num_classes: int, frames: int, size: int, **kwargs) -> Student:
    """Build a registered student; `names()` of STUDENTS lists the choices."""
    return STUDENTS.get(name)(num_classes=num_classes, frames=frames, size=size, **kwargs)
