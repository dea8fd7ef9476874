"""Teachers: one interface (base.Teacher), vision-language and self-supervised teachers, a loader.

    from edgekd.teachers import Teacher, load_teacher

Names load on first use so importing this package stays light (no torch until a teacher is needed).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Teacher": "edgekd.teachers.base",
    "load_teacher": "edgekd.teachers.loading",
    "check_teacher": "edgekd.teachers.loading",
    "VisionLanguageTeacher": "edgekd.teachers.vl_base",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'edgekd.teachers' has no attribute {name!r}")
