"""Hardware profiles: what a target device can do and how to benchmark a student on it.

A profile is a TOML file (the shipped ones live in `edgekd/bench/profiles/`, one per target):

    name = "orin-nano-8gb-15w"
    device = "NVIDIA Jetson Orin Nano 8GB (15 W)"
    kind = "jetson"                     # "jetson" | "gpu" | "cpu"
    match = ["Orin Nano"]               # substrings of the host's device name that mean "this device"

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

    [budget]
    target_fps = 30.0                   # video frame rate the device must keep up with
    clip_frames = 16                    # frames covered by one clip

The latency budget of one clip is the time its frames take to arrive: clip_frames / target_fps.
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
# Runtime names, fastest-first on NVIDIA hardware. edgekd.bench.runners implements each.
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
    target_fps: float                  # stream frame rate to sustain
    clip_frames: int                   # frames per clip
    match: tuple[str, ...] = ()        # device-name substrings identifying this hardware
    source: str = ""                   # file the profile came from

    @property
    def budget_ms(self) -> float:
        """Latency budget for one clip: the time its frames take to arrive at target_fps."""
        return 1000.0 * self.clip_frames / self.target_fps

    def budget_for(self, frames: int) -> float:
        """Budget (ms) for a student that reads `frames` frames per clip."""
        return 1000.0 * frames / self.target_fps

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
         "match": ("match", "list[str]")},
    "peak": {p: (p, "float") for p in PRECISIONS},
    "memory": {"bandwidth_gbs": ("bandwidth_gbs", "float"), "size_gb": ("memory_gb", "float")},
    "software": {"tensorrt": ("tensorrt_version", "str?"), "jetpack": ("jetpack", "str?"),
                 "dla_cores": ("dla_cores", "int"), "workspace_mb": ("workspace_mb", "int")},
    "bench": {"runtimes": ("runtimes", "list[str]"), "precisions": ("precisions", "list[str]"),
              "batch_sizes": ("batch_sizes", "list[int]"), "warmup": ("warmup", "int"),
              "iterations": ("iterations", "int")},
    "budget": {"target_fps": ("target_fps", "float"), "clip_frames": ("clip_frames", "int")},
}


def _profiles_dir():
    return resources.files("edgekd.bench") / "profiles"


def names() -> list[str]:
    """Names of the profiles shipped with edgekd (file stems)."""
    return sorted(p.name[:-5] for p in _profiles_dir().iterdir() if p.name.endswith(".toml"))


def _check(value: Any, tp: str, key: str, where: str) -> Any:
    def bad() -> ConfigError:
        want = {"str": "a string", "str?": "a string", "float": "a number", "int": "an integer",
                "list[str]": "a list of strings", "list[int]": "a list of integers"}[tp]
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
    item = str if tp == "list[str]" else int
    if not isinstance(value, list) or not value or any(
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
    for key in ("bandwidth_gbs", "memory_gb", "target_fps"):
        must(fields[key] > 0, key, "must be > 0", f"fix {key}")
    for key in ("iterations", "clip_frames"):
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
    """A shipped profile by name (`edgekd profiles` lists them) or a user's TOML file by path."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    text = str(name_or_path)
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
