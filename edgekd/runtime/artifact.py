"""The artifact contract between export and bench: file names, artifact.json, ONNX metadata.

artifact.json: what an export folder holds and the evidence that each file is the trained student.

    {
      "format": "onnx", "precision": "fp32", "file": "student.onnx",     # the primary artifact
      "input":  {"name": "video", "shape": ["batch", 3, T, S, S], "dtype": "float32",
                 "layout": "NCTHW", "dynamic_axes": {"video": {"0": "batch"}, ...}},
      "outputs": [{"name": "logits", "shape": ["batch", C]}],
      "opset": 17, "data_spec": {...}, "student": {"name", "kwargs"},
      "checkpoint": {"path": "../checkpoint.pt", "sha256": "..."},
      "parity_inputs": {"clips": {source, split, clips, labeled}, "noise": N},
      "artifacts": [ {format, precision, file, sha256, bytes, parity, ...}, ... ],
      "libraries": {"torch", "onnx", "onnxruntime", "tensorrt", "numpy", "python", "edgekd"},
      "created": "2025-...",
    }

Each entry of "artifacts" carries its own parity block (figures vs PyTorch + the tolerance that
judged them); the INT8 entry also carries "quantization" settings and "accuracy" on the eval split;
a TensorRT entry is either a built engine or the build manifest with the reason none was built.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from edgekd.errors import EdgekdError, ExportError
from edgekd.io import read_json

INPUT_NAME = "video"
OUTPUT_NAME = "logits"
ONNX_NAMES = {"fp32": "student.onnx", "fp16": "student.fp16.onnx", "int8": "student.int8.onnx"}
ARTIFACT_FILE = "artifact.json"
ARTIFACT_FORMAT = "edgekd-export"


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


def load_artifact(export_dir: str | Path) -> dict[str, Any]:
    path = Path(export_dir) / ARTIFACT_FILE
    if not path.is_file():
        raise ExportError(f"no {ARTIFACT_FILE} in {export_dir}", "run `edgekd export RUN` first")
    data = read_json(path, ExportError, "re-export with --force")
    if data.get("kind") != ARTIFACT_FORMAT:
        raise ExportError(f"{path} was not written by edgekd export", "re-export with --force")
    return data


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
