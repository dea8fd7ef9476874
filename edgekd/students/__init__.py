"""Student networks: one family per module, all registered in STUDENTS.

    from edgekd.students import STUDENTS, Student, build_student

    base           the Student interface and the STUDENTS registry
    tiny3d         a four-stage 3D CNN that trains in minutes on a CPU (the default)
    resnet3d       torchvision's video ResNets: r3d_18, mc3_18, r2plus1d_18
    mobilenet_tsm  MobileNetV3 + Temporal Shift Module (small, large)
    x3d            X3D-XS and X3D-S

`STUDENT_NAMES` lists the registered names without importing torch, so CLI help can show them
while `edgekd --help` stays light; the other names load the families on first use
(tests/students checks the two lists agree).
"""

from __future__ import annotations

import importlib

STUDENT_NAMES = (
    "mc3_18", "mobilenet_v3_large_tsm", "mobilenet_v3_small_tsm", "r2plus1d_18", "r3d_18", "tiny3d",
    "x3d_s", "x3d_xs",
)
DEFAULT_STUDENT = "tiny3d"

_FAMILIES = ("tiny3d", "resnet3d", "mobilenet_tsm", "x3d")

__all__ = ["STUDENTS", "Student", "build_student", "STUDENT_NAMES", "DEFAULT_STUDENT", "load_families"]


def load_families() -> None:
    """Import every family module; importing one registers its students in STUDENTS."""
    for family in _FAMILIES:
        importlib.import_module(f"edgekd.students.{family}")


def __getattr__(name: str):
    if name in ("STUDENTS", "Student", "build_student"):
        load_families()
        return getattr(importlib.import_module("edgekd.students.base"), name)
    raise AttributeError(f"module 'edgekd.students' has no attribute {name!r}")
