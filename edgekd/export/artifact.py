"""artifact.json: what an export folder holds and the evidence that each file is the trained student.

    {
      "format": "onnx", "precision": "fp32", "file": "student.onnx",     # the primary artifact
      "input":  {"name": "video", "shape": ["batch", 3, T, S, S], "dtype": "float32",
                 "layout": "NCTHW", "dynamic_axes": {"video": {"0": "batch"}, ...}},
      "outputs": [{"name": "logits", "shape": ["batch", C]}],
      "opset": 17, "data_spec": {...}, "student": {"name", "kwargs"},
      "checkpoint": {"path": "../checkpoint.pt", "sha256": "..."},
      "parity_inputs": {"clips": {source, split, clips, labels_match}, "noise": N},
      "artifacts": [ {format, precision, file, sha256, bytes, parity, ...}, ... ],
      "libraries": {"torch", "onnx", "onnxruntime", "tensorrt", "numpy", "python", "edgekd"},
      "created": "2025-...",
    }

Each entry of "artifacts" carries its own parity block (figures vs PyTorch + the tolerance that
judged them); the INT8 entry also carries "quantization" settings and "accuracy" on the eval split;
a TensorRT entry is either a built engine or the build manifest with the reason none was built.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from edgekd.errors import ExportError
from edgekd.io import read_json

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


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def render_table(art: dict[str, Any]):
    """A rich Table: one row per artifact with its parity (vs PyTorch) and accuracy figures."""
    from rich import box
    from rich.table import Table

    clips = art.get("parity_inputs", {}).get("clips", {})
    t = Table(title=f"{art['student']['name']}: parity vs PyTorch on {clips.get('clips', '?')} {clips.get('split', '')} "
                    f"clips ({clips.get('source', '?')}) + {art.get('parity_inputs', {}).get('noise', 0)} noise inputs",
              title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    # max|Δ| / cos / top1= : vs PyTorch on the parity clips; acc: top-1 accuracy on the eval split
    for col in ("file", "prec", "MB", "max|Δ|", "cos", "top1=", "acc", "parity"):
        t.add_column(col, justify="left" if col in ("file", "prec", "parity") else "right", no_wrap=True)
    for a in art["artifacts"]:
        p = a.get("parity") or {}
        c = p.get("clips") or {}
        acc = (a.get("accuracy") or {}).get("top1")
        if "parity" in a:
            status = "[green]ok[/green]" if p.get("passed") else "[red]FAILED[/red]"
        else:
            status = f"[yellow]{a.get('status', '')}[/yellow]"
        t.add_row(a["file"], a["precision"], _fmt(a["bytes"] / 1e6 if a.get("bytes") else None, ".2f"),
                  _fmt(c.get("max_abs"), ".1e"), _fmt(c.get("cosine_min"), ".4f"),
                  _fmt(c.get("top1_agreement"), ".2f"), _fmt(acc, ".3f"), status)
    return t
