"""Typed errors that carry the fix.

The CLI edge prints `error: <message>` in red and `hint: <hint>` beneath it, then exits non-zero;
the traceback appears only with `--debug`. Library code raises these instead of asserting.
"""

from __future__ import annotations


class EdgekdError(Exception):
    """An error a user can act on: `message` says what is wrong, `hint` how to fix it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class ConfigError(EdgekdError):
    """A config file, flag or profile is malformed or names something unknown."""


class AccessError(EdgekdError):
    """A file or folder edgekd must read or write is not accessible (permissions, read-only disk)."""


class DataError(EdgekdError):
    """A dataset, manifest, split file or video cannot be used."""


class VideoDecodeError(DataError):
    """One video could not be decoded; datasets skip such videos with a warning."""


class LoaderStalled(DataError):
    """A DataLoader worker delivered nothing within the loader's time limit (names the video it was on)."""


class CheckpointError(EdgekdError):
    """A checkpoint is missing, corrupt, or not an edgekd checkpoint."""


class TeacherError(EdgekdError):
    """A teacher's weights, encoder or cache cannot be used."""


class ExportError(EdgekdError):
    """Export failed or the exported model does not match PyTorch."""


class BenchError(EdgekdError):
    """A benchmark cannot run as asked."""


class TrainingDiverged(EdgekdError):
    """The loss became NaN/inf; the last good checkpoint is kept."""
