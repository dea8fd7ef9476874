"""Hardware profiles: what a target device can do and how to benchmark a student on it.

A profile is a TOML file (the shipped ones live in `edgekd/runtime/profiles/`, one per target):

    name = "orin-nano-8gb-15w"
    device = "NVIDIA Jetson Orin Nano 8GB (15 W)"
    kind = "jetson"                     # "jetson" | "gpu" | "cpu"
    match = ["Orin Nano*15W"]           # device strings that mean "this device" (`*` = anything)

    [peak]                              # dense peak rates, TFLOPS (TOPS for int8)
    fp32 = 1.28
    fp16 = 10.0
    int8 = 20.0

    [memory]
    bandwidth_gbs = 68.0
    size_gb = 8.0

    [software]
    tensorrt = "10.3"                   # "" on a CPU profile
    jetpack = "6.2"                     # "" off Jetson
    dla_cores = 0
    workspace_mb = 1024

    [bench]
    runtimes = ["tensorrt", "ort-trt", "ort-cuda", "ort-cpu", "torch-cuda", "torch-cpu"]
    precisions = ["int8", "fp16", "fp32"]
    batch_sizes = [1, 2, 4]
    warmup = 20
    iterations = 200

    [overhead]
    kernel_launch_us = 10.0             # fixed cost per kernel, for the per-layer latency estimate

    [budget]                            # the workload: cameras x fps, one prediction every stride
    cameras = 2                         # streams one device serves
    fps = 30.0                          # frames per second per camera
    clip_frames = 16                    # frames one prediction looks at
    stride_frames = 8                   # frames between two predictions of one camera

One camera needs fps / stride_frames predictions per second; the device keeps up when it serves
cameras x that. The budget of one clip at batch 1 is stride_frames / fps / cameras.
Every key is required; an unknown key, a missing key or a value of the wrong type is a ConfigError
naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from edgekd.errors import ConfigError
from edgekd.registry import did_you_mean

KINDS = ("jetson", "gpu", "cpu")
PRECISIONS = ("fp32", "fp16", "int8")
# Runtime names, fastest-first on NVIDIA hardware. edgekd.runtime.runners implements each.
RUNTIMES = ("tensorrt", "ort-trt", "ort-cuda", "ort-cpu", "torch-cuda", "torch-cpu")


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    device: str
    kind: str                          # "jetson" | "gpu" | "cpu"
    peak_tflops: dict[str, float]      # dense peak per precision; int8 in TOPS
    bandwidth_gbs: float               # DRAM/HBM bandwidth, GB/s
    memory_gb: float
    tensorrt_version: str | None       # None where TensorRT does not apply (CPU)
    jetpack: str | None                # None off Jetson
    dla_cores: int
    workspace_mb: int                  # TensorRT builder workspace
    runtimes: tuple[str, ...]          # tried in this order
    precisions: tuple[str, ...]        # tried in this order
    batch_sizes: tuple[int, ...]
    warmup: int
    iterations: int
    kernel_launch_us: float            # fixed cost per kernel (per-layer estimate)
    cameras: int                       # workload: streams served by one device
    fps: float                         #   frames per second per stream
    clip_frames: int                   #   frames per prediction
    stride_frames: int                 #   frames between two predictions of one stream
    match: tuple[str, ...] = ()        # device strings identifying this hardware
    source: str = ""                   # file the profile came from

    @property
    def stream_rate(self) -> float:
        """Predictions per second one camera needs."""
        return self.fps / self.stride_frames

    @property
    def budget_ms(self) -> float:
        """Time for one clip at batch 1 when one device serves every camera of the workload."""
        return 1000.0 / (self.stream_rate * self.cameras)

    def peak_flops(self, precision: str) -> float:
        """Peak rate in FLOP/s (OP/s for int8)."""
        return self.peak_tflops[precision] * 1e12

    @property
    def bandwidth_bytes(self) -> float:
        return self.bandwidth_gbs * 1e9

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["budget_ms"] = self.budget_ms
        return d


# TOML layout: table -> key -> (Profile field, type). `str?` means "" is stored as None.
_SCHEMA: dict[str, dict[str, tuple[str, str]]] = {
    "": {"name": ("name", "str"), "device": ("device", "str"), "kind": ("kind", "str"),
         "match": ("match", "list[str]?")},
    "peak": {p: (p, "float") for p in PRECISIONS},
    "memory": {"bandwidth_gbs": ("bandwidth_gbs", "float"), "size_gb": ("memory_gb", "float")},
    "software": {"tensorrt": ("tensorrt_version", "str?"), "jetpack": ("jetpack", "str?"),
                 "dla_cores": ("dla_cores", "int"), "workspace_mb": ("workspace_mb", "int")},
    "bench": {"runtimes": ("runtimes", "list[str]"), "precisions": ("precisions", "list[str]"),
              "batch_sizes": ("batch_sizes", "list[int]"), "warmup": ("warmup", "int"),
              "iterations": ("iterations", "int")},
    "overhead": {"kernel_launch_us": ("kernel_launch_us", "float")},
    "budget": {"cameras": ("cameras", "int"), "fps": ("fps", "float"), "clip_frames": ("clip_frames", "int"),
               "stride_frames": ("stride_frames", "int")},
}


def _profiles_dir():
    return resources.files("edgekd.runtime") / "profiles"


def names() -> list[str]:
    """Names of the profiles shipped with edgekd (file stems)."""
    return sorted(p.name[:-5] for p in _profiles_dir().iterdir() if p.name.endswith(".toml"))


def _check(value: Any, tp: str, key: str, where: str) -> Any:
    def bad() -> ConfigError:
        want = {"str": "a string", "str?": "a string", "float": "a number", "int": "an integer",
                "list[str]": "a list of strings", "list[str]?": "a list of strings", "list[int]": "a list of integers"}[tp]
        return ConfigError(f"{where}: {key} must be {want}, got {value!r}", f"fix the value of {key} in {where}")

    if tp in ("str", "str?"):
        if not isinstance(value, str):
            raise bad()
        return (value or None) if tp == "str?" else value
    if tp == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if tp == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    item = int if tp == "list[int]" else str
    if not isinstance(value, list) or (not value and tp != "list[str]?") or any(
            isinstance(v, bool) or not isinstance(v, item) for v in value):
        raise bad()
    return tuple(value)


def _validate(data: dict[str, Any], where: str) -> Profile:
    fields: dict[str, Any] = {"peak_tflops": {}}
    for table, keys in _SCHEMA.items():
        node = data if not table else data.get(table)
        if node is None:
            raise ConfigError(f"{where}: missing table [{table}]", f"add a [{table}] table with: " + ", ".join(keys))
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: {table} must be a table, got {node!r}", f"write it as [{table}]")
        allowed = list(keys) + ([t for t in _SCHEMA if t] if not table else [])
        for key in node:
            if key not in allowed:
                full = f"{table}.{key}" if table else key
                raise ConfigError(f"{where}: unknown key {full!r}", did_you_mean(key, allowed))
        for key, (field, tp) in keys.items():
            full = f"{table}.{key}" if table else key
            if key not in node:
                raise ConfigError(f"{where}: missing key {full!r}", f"add `{key} = ...` to the [{table or 'top'}] of {where}")
            value = _check(node[key], tp, full, where)
            if table == "peak":
                fields["peak_tflops"][key] = value
            else:
                fields[field] = value

    def must(cond: bool, key: str, msg: str, hint: str) -> None:
        if not cond:
            raise ConfigError(f"{where}: {key} {msg}", hint)

    must(fields["kind"] in KINDS, "kind", f"is {fields['kind']!r}", did_you_mean(fields["kind"], list(KINDS)))
    for r in fields["runtimes"]:
        must(r in RUNTIMES, "bench.runtimes", f"names unknown runtime {r!r}", did_you_mean(r, list(RUNTIMES)))
    for p in fields["precisions"]:
        must(p in PRECISIONS, "bench.precisions", f"names unknown precision {p!r}", did_you_mean(p, list(PRECISIONS)))
    for p, v in fields["peak_tflops"].items():
        must(v > 0, f"peak.{p}", "must be > 0", "give the dense peak rate in TFLOPS (TOPS for int8)")
    for key in ("bandwidth_gbs", "memory_gb", "fps"):
        must(fields[key] > 0, key, "must be > 0", f"fix {key}")
    must(fields["kernel_launch_us"] >= 0, "overhead.kernel_launch_us", "must be >= 0", "give microseconds per kernel")
    for key in ("iterations", "clip_frames", "stride_frames", "cameras"):
        must(fields[key] >= 1, key, "must be >= 1", f"fix {key}")
    must(fields["warmup"] >= 0 and fields["dla_cores"] >= 0 and fields["workspace_mb"] >= 0,
         "warmup/dla_cores/workspace_mb", "must be >= 0", "use non-negative integers")
    must(all(b >= 1 for b in fields["batch_sizes"]), "bench.batch_sizes", "must be >= 1", "use positive batch sizes")
    return Profile(**fields, source=where)


def parse_profile(text: str, where: str) -> Profile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML: {e}", "fix the syntax at the line named") from e
    return _validate(data, where)


def load_profile(name_or_path: str | Path | Profile) -> Profile:
    """"host", a shipped profile by name (`edgekd profiles` lists them) or a user's TOML file by path."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    text = str(name_or_path)
    if text == "host":  # this machine, peaks measured (edgekd.runtime.host)
        from edgekd.runtime.host import host_profile

        return host_profile()
    path = Path(text)
    if text.endswith(".toml") or path.is_file() or "/" in text:
        if not path.is_file():
            raise ConfigError(f"profile file {path} does not exist", "check the path passed to --profile")
        return parse_profile(path.read_text(), str(path))
    shipped = names()
    if text not in shipped:
        raise ConfigError(f"unknown profile {text!r}", did_you_mean(text, shipped))
    res = _profiles_dir() / f"{text}.toml"
    return parse_profile(res.read_text(), f"profiles/{text}.toml")


def profile_text(name_or_path: str | Path) -> str:
    """The TOML text of a profile (shipped name or path), comments and sources included."""
    text = str(name_or_path)
    if text in names():
        return (_profiles_dir() / f"{text}.toml").read_text()
    return Path(text).read_text()


def load_all() -> list[Profile]:
    return [load_profile(n) for n in names()]
