"""Where edgekd keeps what it builds once and reuses: generated data, fitted teachers, engine caches."""

from __future__ import annotations

import os
from pathlib import Path


def edgekd_home() -> Path:
    """Where edgekd caches generated data and fitted teachers: $EDGEKD_HOME or ~/.cache/edgekd."""
    return Path(os.environ.get("EDGEKD_HOME") or Path.home() / ".cache" / "edgekd").expanduser()
