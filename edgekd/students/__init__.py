"""Student networks: one family per module, all registered in STUDENTS."""

from edgekd.students.base import STUDENTS, Student, build_student

__all__ = ["STUDENTS", "Student", "build_student"]
