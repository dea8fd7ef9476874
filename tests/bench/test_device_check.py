"""benchmarks/device_check.sh on a machine without CUDA: a clean, explained skip (exit 0, JSON says why)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_device_check_skips_cleanly_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the device check would run for minutes")
    out = tmp_path / "check.json"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--json", str(out)],
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    first, last = proc.stdout.strip().splitlines()[0], proc.stdout.strip().splitlines()[-1]
    assert first.startswith("device check skipped: no CUDA device visible") and "Traceback" not in proc.stderr
    assert json.loads(last) == json.loads(out.read_text())
    assert json.loads(last)["skipped"] is True and "CUDA" in json.loads(last)["reason"]
