"""The artifact contract between export and bench: the file table, artifact.json, ONNX metadata.

artifact.json: what an export folder holds and the evidence that each file is the trained student.

    {
      "kind": "edgekd-export", "format": "onnx", "precision": "fp32", "file": "student.onnx",  # primary
      "input":  {"name": "video", "shape": ["batch", 3, T, S, S], "dtype": "float32",
                 "layout": "NCTHW", "dynamic_axes": {"video": {"0": "batch"}, ...}},
      "outputs": [{"name": "logits", "shape": ["batch", C]}],
      "opset": 17, "data_spec": {...}, "student": {"name", "kwargs"},
      "checkpoint": {"path": "../checkpoint.pt", "sha256": "...", "metrics": {...}},
      "parity_inputs": {"clips": {source, split, clips, labeled}, "noise": N}, "eval": {...},
      "artifacts": [ {format, precision, file, sha256, bytes, parity, ...}, ... ],
      "deploy": {"runtimes": {runtime: file}, "cpu_int8", "fp16_onnx", "bundles"},
      "tensorrt_readiness": {...} | null,
      "libraries": {"torch", "onnx", "onnxruntime", "tensorrt", "numpy", "python", "edgekd"},
      "created": "2025-...",
    }

Each entry of "artifacts" carries its own parity block (figures vs PyTorch + the tolerance that
judged them); the INT8 entry also carries "quantization" settings and "accuracy" on the eval split;
a TensorRT entry is either a built engine or the build manifest with the reason none was built.
`Artifact` is that file typed: export writes one, bench reads one.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.errors import EdgekdError, ExportError
from edgekd.io import read_json

INPUT_NAME = "video"
OUTPUT_NAME = "logits"
ARTIFACT_FORMAT = "edgekd-export"

# Every file or folder an export can hold, named here once; everything else refers to these keys.
FILES = {
    "artifact": "artifact.json",                 # this contract
    "onnx": "student.onnx",                      # FP32, dynamic batch, the reference every other file derives from
    "fp16": "student.fp16.onnx",                 # FP16 inside, FP32 I/O (ORT CUDA, Triton)
    "int8": "student.int8.onnx",                 # Q/DQ by TensorRT's rules (TensorRT, DeepStream, Triton plan)
    "int8-cpu": "student.int8-cpu.onnx",         # ORT's x86 INT8 format, kept only when faster
    "stream": "student.stream.onnx",             # one frame in, state carried
    "stream-fp16": "student.stream.fp16.onnx",
    "stream-int8": "student.stream.int8.onnx",
    "build-manifest": "build_manifest.json",     # TensorRT: what to build on the target
    "build-script": "build_engine.sh",           # TensorRT: the one command that builds it there
    "calib-clips": "calib_clips.npy",            # TensorRT 8.x implicit INT8: clips for the target's calibrator
    "calib-cache": "calib.cache",                # ... and the cache that calibrator writes there
    "timing-cache": "trt_timing.cache",          # TensorRT's tactic timings, reused by the next build
    "deepstream": "deepstream",                  # folder: nvdspreprocess + nvinfer bundle
    "triton": "triton",                          # folder: Triton model repository
}
ARTIFACT_FILE = FILES["artifact"]
ONNX_NAMES = {"fp32": FILES["onnx"], "fp16": FILES["fp16"], "int8": FILES["int8"]}  # precision -> clip ONNX


def engine_file(onnx: str, precision: str, dla: bool = False) -> str:
    """student.int8.onnx -> student.int8.engine (not student.int8.int8); student.onnx -> student.fp16.engine."""
    stem = Path(onnx).name.split(".")[0]
    return f"{stem}.{precision}{'.dla' if dla else ''}.engine"


def library_versions() -> dict[str, str | None]:
    """Versions of everything that shaped the artifacts (None = not installed)."""
    from importlib import metadata

    from edgekd import __version__

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    ort = version("onnxruntime") or version("onnxruntime-gpu")
    return {"edgekd": __version__, "python": platform.python_version(), "torch": version("torch"),
            "onnx": version("onnx"), "onnxruntime": ort, "numpy": version("numpy"),
            "tensorrt": version("tensorrt") or version("tensorrt-cu12") or version("tensorrt-libs")}


def file_entry(root: Path, rel: str, *, fmt: str, precision: str, **extra: Any) -> dict[str, Any]:
    from edgekd.io import sha256_file

    path = root / rel
    return {"format": fmt, "precision": precision, "file": rel, "sha256": sha256_file(path),
            "bytes": path.stat().st_size, **extra}


def check_sha256(path: Path, want: str | None, error: type[EdgekdError] = ExportError) -> None:
    """A file artifact.json records must be that file still: a truncated or edited copy fails here, by name."""
    from edgekd.io import sha256_file

    if want and (got := sha256_file(path)) != want:
        raise error(f"{path} is damaged or changed since export (sha256 {got[:12]}, {ARTIFACT_FILE} "
                    f"recorded {want[:12]})", "re-export the run: edgekd export RUN --force")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class Artifact:
    """artifact.json, typed: the files (one entry each), the data spec, the checkpoint it came from.

    The checkpoint's sha256 lives once, in `checkpoint["sha256"]`; the ONNX metadata carries its own copy
    so a deployed file names its checkpoint without the folder."""

    input: dict[str, Any]                        # name, shape, dtype, layout, dynamic_axes of student.onnx
    outputs: list[dict[str, Any]]
    opset: int | None
    data_spec: dict[str, Any]
    student: dict[str, Any]                      # name, kwargs
    checkpoint: dict[str, Any]                   # path (relative to the export folder), sha256, metrics
    files: list[dict[str, Any]]                  # "artifacts": one entry per file, each with sha256 + parity
    parity_inputs: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    deploy: dict[str, Any] = field(default_factory=dict)  # runtimes (runtime -> file), cpu_int8, fp16_onnx, bundles
    tensorrt_readiness: dict[str, Any] | None = None
    libraries: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    @property
    def checkpoint_sha256(self) -> str | None:
        return self.checkpoint.get("sha256")

    @property
    def precisions(self) -> list[str]:
        return list(dict.fromkeys(e["precision"] for e in self.files))

    @property
    def runtimes(self) -> dict[str, str]:
        return dict(self.deploy.get("runtimes") or {})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": ARTIFACT_FORMAT, "format": "onnx", "precision": "fp32", "file": FILES["onnx"],
                "input": self.input, "outputs": self.outputs, "opset": self.opset, "data_spec": self.data_spec,
                "student": self.student, "checkpoint": self.checkpoint, "parity_inputs": self.parity_inputs,
                "eval": self.eval, "artifacts": self.files, "deploy": self.deploy,
                "tensorrt_readiness": self.tensorrt_readiness, "libraries": self.libraries, "created": self.created}

    def write(self, export_dir: Path) -> None:
        from edgekd.io import write_json

        write_json(Path(export_dir) / ARTIFACT_FILE, self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: Path, error: type[EdgekdError] = ExportError) -> "Artifact":
        """Any artifact.json edgekd export has written (the checkpoint sha once stood at the top level too)."""
        files = d.get("artifacts") if isinstance(d, dict) else None
        if (files is None or d.get("kind") != ARTIFACT_FORMAT or not isinstance(files, list)
                or not all(isinstance(e, dict) and "file" in e and "precision" in e for e in files)):
            raise error(f"{where} was not written by this edgekd's export", "re-export the run: edgekd export RUN --force")
        ck = dict(d.get("checkpoint") or {})
        ck.setdefault("sha256", d.get("checkpoint_sha256"))
        return cls(input=d.get("input") or {}, outputs=d.get("outputs") or [], opset=d.get("opset"),
                   data_spec=d.get("data_spec") or {}, student=d.get("student") or {}, checkpoint=ck, files=files,
                   parity_inputs=d.get("parity_inputs") or {}, eval=d.get("eval") or {}, deploy=d.get("deploy") or {},
                   tensorrt_readiness=d.get("tensorrt_readiness"), libraries=d.get("libraries") or {},
                   created=d.get("created", ""))

    @classmethod
    def load(cls, export_dir: str | Path, error: type[EdgekdError] = ExportError) -> "Artifact":
        path = Path(export_dir) / ARTIFACT_FILE
        if not path.is_file():
            raise error(f"no {ARTIFACT_FILE} in {export_dir}", "run `edgekd export RUN` first")
        return cls.from_dict(read_json(path, error, "re-export with --force"), path, error)


def load_artifact(export_dir: str | Path) -> dict[str, Any]:
    """artifact.json as a plain dict in today's shape (an older file is read through `Artifact`)."""
    return Artifact.load(export_dir).to_dict()


def metadata(spec, student_name: str, opset: int, extra: dict[str, Any] | None = None) -> dict[str, str]:
    """metadata_props: a deployed model carries its own preprocessing contract (all values are strings)."""
    from edgekd import __version__

    props = {
        "edgekd_version": __version__,
        "student": student_name,
        "class_names": json.dumps(list(spec.class_names)),
        "num_classes": str(spec.num_classes),
        "mean": json.dumps(list(spec.mean)),
        "std": json.dumps(list(spec.std)),
        "frames": str(spec.frames),
        "size": str(spec.size),
        "frame_stride": str(spec.frame_stride),
        "input_layout": "NCTHW, RGB, float32 in [0,1] then (x - mean) / std",
        "output_kind": "logits",
        "opset": str(opset),
    }
    for k, v in (extra or {}).items():
        props[k] = v if isinstance(v, str) else json.dumps(v)
    return props


def preprocess_contract(spec, decode_short_side: int) -> dict[str, Any]:
    """Everything between a video file and the model's input, as evaluation does it (edgekd.data:
    decode.read_frames, sampling.uniform_starts/clip_indices, transforms.center_crop/normalize), so a
    client with only a decoder, numpy and ONNX Runtime reproduces edgekd's logits.

    The resize is decord's (edgekd's decoder where installed): libavfilter `scale=W:H:flags=bilinear`
    in the source pixel format, then `format=rgb24`. PyAV's VideoFrame.reformat(W, H, "rgb24") resizes
    after converting and gives different pixels (up to 20 grey levels on a 64 px source); the filter
    graph below gives decord's exactly."""
    span = (spec.frames - 1) * spec.frame_stride + 1
    return {
        "decode": {"short_side": int(decode_short_side), "long_side": "round(long * short_side / short)",
                   "resize": "ffmpeg scale filter, flags=bilinear, in the source pixel format, then format=rgb24",
                   "pyav": "av.filter.Graph: buffer -> scale=W:H:flags=bilinear -> format=rgb24 -> buffersink",
                   "unchanged_when": "the frame already has that size"},
        "sampling": {"frames": spec.frames, "stride": spec.frame_stride, "span": span,
                     "start": f"max(0, num_frames - {span}) // 2  (one centre clip)",
                     "indices": "min(start + i * stride, num_frames - 1) for i in range(frames)",
                     "short_video": "indices past the last frame repeat the last frame"},
        "crop": {"size": spec.size, "top": "(H - size) // 2", "left": "(W - size) // 2"},
        "colour": "RGB", "dtype": "float32", "scale": "x / 255", "mean": list(spec.mean), "std": list(spec.std),
        "normalize": "(x / 255 - mean) / std per channel", "layout": "N, C, T, H, W",
        "output": {"name": OUTPUT_NAME, "kind": "logits (no softmax; softmax gives class probabilities)",
                   "classes": "class_names, in order"},
    }


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}


def spec_from_metadata(meta: dict[str, str]) -> dict[str, Any] | None:
    """The data-spec dict an ONNX file's metadata carries (None when it carries none)."""
    if "frames" not in meta:
        return None
    return {"frames": int(meta["frames"]), "size": int(meta["size"]), "class_names": json.loads(meta["class_names"]),
            "mean": json.loads(meta["mean"]), "std": json.loads(meta["std"]),
            "frame_stride": int(meta.get("frame_stride", 1))}
