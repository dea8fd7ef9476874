"""The environment a measurement was taken in: library versions, CPU, GPU, Jetson power state.

Every report records this, so a number can be traced to the machine and software that produced it.
On a Jetson the power mode and clocks decide the latency as much as the model does: we record
/etc/nv_tegra_release, `nvpmodel -q` and `jetson_clocks --show` when they exist.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

LIBRARIES = ("edgekd", "torch", "torchvision", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu",
             "tensorrt", "decord", "av")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def _command(args: list[str], timeout: float = 10.0) -> str | None:
    if shutil.which(args[0]) is None:
        return None
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e:
        return f"failed: {e}"
    text = (out.stdout + out.stderr).strip()
    return text if out.returncode == 0 else f"exit {out.returncode}: {text[:500]}"


def cpu_model() -> str:
    info = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", info, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    """The CUDA device name via torch (when it is already importable with CUDA), else nvidia-smi."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - a broken CUDA install just means "no GPU name"
        pass
    out = _command(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])
    if out and not out.startswith(("failed", "exit")):
        return out.splitlines()[0].strip()
    return None


def jetson_info() -> dict[str, Any] | None:
    """L4T release, board model, power mode and clocks on a Jetson; None elsewhere."""
    release = _read("/etc/nv_tegra_release")
    if release is None:
        return None
    return {
        "model": _read("/proc/device-tree/model"),
        "nv_tegra_release": release,
        "nvpmodel": _command(["nvpmodel", "-q"]),
        "jetson_clocks": _command(["jetson_clocks", "--show"]),
    }


def device_names(env: dict[str, Any]) -> list[str]:
    """The names a profile's `match` list is compared against."""
    names = [env.get("gpu") or "", env.get("machine") or ""]
    if env.get("jetson"):
        names.append(env["jetson"].get("model") or "")
    return [n for n in names if n]


def matches(patterns: tuple[str, ...] | list[str], names: list[str]) -> bool:
    """True when a pattern occurs in a name as a whole token ("NVIDIA L4" must not match "NVIDIA L40S")."""
    return any(re.search(re.escape(p) + r"(?![0-9A-Za-z])", n, re.IGNORECASE) for p in patterns for n in names)


def collect() -> dict[str, Any]:
    env: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu_name(),
        "jetson": jetson_info(),
        "libraries": {name: v for name in LIBRARIES if (v := _version(name))},
    }
    try:
        import onnxruntime as ort

        env["onnxruntime_providers"] = ort.get_available_providers()
    except Exception:  # noqa: BLE001
        env["onnxruntime_providers"] = []
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = torch.version.cuda
    except Exception:  # noqa: BLE001
        pass
    return env
