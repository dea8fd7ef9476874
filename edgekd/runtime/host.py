"""The machine a measurement runs on: what it is (`collect`) and what it can do (`host_profile`).

Every report records the environment, so a number can be traced to the machine and software that
produced it. On a Jetson the power mode and clocks decide the latency as much as the model does: we
record /etc/nv_tegra_release, `nvpmodel -q` and `jetson_clocks --show` when they exist.

`host_profile()` describes this machine as a Profile named "host": cores, ISA flags from
/proc/cpuinfo (AVX2, AVX-512, VNNI, AMX), the GPU when torch sees one, and peak FLOPS and memory
bandwidth measured by short micro-benchmarks (edgekd.runtime.microbench), never assumed.
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
    """The device strings a profile's `match` list is compared against: the GPU's name, and on a
    Jetson its board model plus the nvpmodel power mode (one board runs at 15 W or MAXN SUPER)."""
    names = [env.get("gpu") or ""]
    if env.get("jetson"):
        j = env["jetson"]
        mode = re.search(r"Power Mode:\s*(\S+)", j.get("nvpmodel") or "")
        names.append(f"{j.get('model') or ''} {mode.group(1) if mode else ''}".strip())
    return [n for n in names if n]


def _pattern(p: str) -> re.Pattern:
    """`*` = anything; the pattern's ends fall on word boundaries ("NVIDIA L4" never matches "NVIDIA L40S")."""
    body = ".*".join(re.escape(part) for part in p.split("*"))
    return re.compile(r"(?<![0-9A-Za-z])" + body + r"(?![0-9A-Za-z])", re.IGNORECASE)


def matches(patterns: tuple[str, ...] | list[str], names: list[str]) -> bool:
    """True when a pattern matches one of the device strings."""
    return any(_pattern(p).search(n) for p in patterns for n in names)


ISA_FLAGS = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_vnni": "AVX-512 VNNI",
             "avx_vnni": "AVX-VNNI", "amx_tile": "AMX", "amx_int8": "AMX-INT8", "amx_bf16": "AMX-BF16",
             "asimd": "NEON", "asimddp": "NEON dot product", "sve": "SVE"}


def isa_flags(cpuinfo: str | None = None) -> list[str]:
    """The vector-ISA features of /proc/cpuinfo's flags (x86) or Features (ARM) line that set peak rates."""
    info = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    m = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", info or "", re.MULTILINE)
    have = set(m.group(1).split()) if m else set()
    return [name for flag, name in ISA_FLAGS.items() if flag in have]


def last_level_cache_bytes() -> int | None:
    """Size of the largest CPU cache (sysfs), None where it is not exposed."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        m = re.match(r"(\d+)([KMG]?)", _read(str(f)) or "")
        if m:
            sizes.append(int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)])
    return max(sizes) if sizes else None


def physical_cores() -> int:
    """Cores the process may use (affinity mask), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def collect() -> dict[str, Any]:
    env: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": physical_cores(),
        "isa": isa_flags(),
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


_HOST: dict[str, Any] = {}


def host_profile(env: dict[str, Any] | None = None):
    """This machine as a Profile named "host", peaks measured once per process (a second or two each)."""
    from edgekd.runtime import microbench
    from edgekd.runtime.profiles import Profile

    if "profile" in _HOST:
        return _HOST["profile"]
    env = env or collect()
    gpu = env.get("gpu") if _cuda_available() else None
    peaks = microbench.measure(cuda=gpu is not None)
    kind = "gpu" if gpu else "cpu"
    runtimes = ("ort-cuda", "torch-cuda", "ort-cpu", "torch-cpu") if gpu else ("ort-cpu", "torch-cpu")
    device = gpu or f"{env['cpu']} ({env['cpu_count']} cores{', ' + ', '.join(env['isa']) if env['isa'] else ''})"
    prof = Profile(name="host", device=device, kind=kind,
                   peak_tflops={p: v / 1e12 for p, v in peaks.flops.items()},
                   bandwidth_gbs=peaks.bandwidth / 1e9, memory_gb=_memory_gb(gpu is not None),
                   tensorrt_version=None, jetpack=None, dla_cores=0, workspace_mb=1024 if gpu else 0,
                   runtimes=runtimes, precisions=("fp32", "fp16", "int8") if gpu else ("fp32", "int8"),
                   batch_sizes=(1, 2, 4), warmup=5, iterations=30, kernel_launch_us=peaks.launch_us,
                   cameras=1, fps=30.0, clip_frames=16, stride_frames=8, match=(), source="measured on this host")
    _HOST["profile"], _HOST["peaks"] = prof, peaks
    return prof


def host_peaks():
    """The micro-benchmark figures behind host_profile() (measured on first use)."""
    host_profile()
    return _HOST["peaks"]


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def _memory_gb(gpu: bool) -> float:
    if gpu:
        import torch

        return torch.cuda.get_device_properties(0).total_memory / 2**30
    m = re.search(r"^MemTotal:\s*(\d+)", _read("/proc/meminfo") or "", re.MULTILINE)
    return int(m.group(1)) / 2**20 if m else 0.0
