"""Find what to benchmark: a run folder, its export folder, or a checkpoint.

    runs/NAME/                 checkpoint.pt (+ export/ when `edgekd export` ran)
    runs/NAME/export/          artifact.json, student.onnx, student.int8.onnx, student.<prec>.engine
                               (or a TensorRT build manifest), written by edgekd.export
    runs/NAME/checkpoint.pt

The data spec comes from artifact.json, else the checkpoint, else the ONNX file's metadata. When
artifact.json records the checkpoint's sha256, the checkpoint found next to it must match: the
PyTorch reference has to be the model that was exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.checkpoint import DataSpec
from edgekd.errors import BenchError
from edgekd.io import read_json

from edgekd.runtime.artifact import ARTIFACT_FILE, ONNX_NAMES, check_sha256


@dataclass
class Target:
    name: str                                   # the run's name (report title, Pareto group)
    run_dir: Path | None
    export_dir: Path | None
    checkpoint: Path | None
    spec: DataSpec
    onnx: dict[str, Path] = field(default_factory=dict)      # precision -> ONNX file
    engines: dict[str, Path] = field(default_factory=dict)   # precision -> TensorRT engine
    declared_inputs: list[tuple[str, list[Any]]] = field(default_factory=list)  # (where, input shape)
    manifest: dict[str, Any] = field(default_factory=dict)   # artifact.json as written
    dataset: str | None = None                  # the dataset the run trained on (checkpoint config)
    student: str | None = None
    checkpoint_sha256: str | None = None

    @property
    def bench_dir(self) -> Path:
        base = self.run_dir or (self.export_dir.parent if self.export_dir else Path("."))
        return base / "bench"


def default_bench_dir(path: str | Path) -> Path:
    """Where `edgekd bench PATH` writes without --out (Target.bench_dir), known before anything is loaded."""
    p = Path(path)
    return p / "bench" if (p / "checkpoint.pt").is_file() else p.parent / "bench"


def _artifact_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-file entries of artifact.json, whatever nesting export chose (list or precision map)."""
    entries = manifest.get("artifacts", [])
    if isinstance(entries, dict):
        entries = [dict(v, precision=v.get("precision", k)) for k, v in entries.items() if isinstance(v, dict)]
    if not entries and ("file" in manifest or "path" in manifest):
        entries = [manifest]
    return [e for e in entries if isinstance(e, dict)]


def _input_shape(entry: dict[str, Any]) -> list[Any] | None:
    inp = entry.get("input")
    if isinstance(inp, dict) and "shape" in inp:
        return list(inp["shape"])
    if "input_shape" in entry:
        return list(entry["input_shape"])
    return None


def _onnx_input_shape(path: Path) -> list[Any]:
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends: a damaged file
        raise BenchError(f"{path} is not a readable ONNX file ({type(e).__name__})",
                         "re-export the run: edgekd export RUN --force") from e
    dims = m.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param if d.dim_param else d.dim_value for d in dims]


def resolve(path: str | Path) -> Target:
    """A Target for a run folder, an export folder or a checkpoint file."""
    from edgekd.checkpoint import load_checkpoint

    path = Path(path)
    if not path.exists():
        raise BenchError(f"{path} does not exist", "pass a run folder (runs/NAME) or its export folder")
    run_dir = export_dir = checkpoint = None
    if path.is_file():
        if path.suffix != ".pt":
            raise BenchError(f"{path} is not a run folder, export folder or checkpoint.pt",
                             "pass runs/NAME or runs/NAME/export")
        checkpoint, run_dir = path, path.parent
    elif (path / "checkpoint.pt").is_file():
        run_dir, checkpoint = path, path / "checkpoint.pt"
    else:
        export_dir = path
    if run_dir is not None and (run_dir / "export").is_dir():
        export_dir = run_dir / "export"

    manifest: dict[str, Any] = {}
    if export_dir is not None:
        art = export_dir / ARTIFACT_FILE
        if art.is_file():
            manifest = read_json(art, BenchError, "re-run `edgekd export --force`")
        elif not any(export_dir.glob("*.onnx")):
            raise BenchError(f"{export_dir} holds no artifact.json, ONNX file or checkpoint.pt",
                             "run `edgekd export RUN` first, or pass the run folder")
        if run_dir is None and (export_dir.parent / "checkpoint.pt").is_file():
            run_dir, checkpoint = export_dir.parent, export_dir.parent / "checkpoint.pt"
        ck = manifest.get("checkpoint")
        if checkpoint is None and isinstance(ck, dict) and ck.get("path"):
            cand = (export_dir / ck["path"]) if not Path(ck["path"]).is_absolute() else Path(ck["path"])
            checkpoint = cand if cand.is_file() else None

    ckpt = load_checkpoint(checkpoint) if checkpoint is not None else None
    target = Target(name=(run_dir or (export_dir.parent if export_dir else path)).name, run_dir=run_dir,
                    export_dir=export_dir, checkpoint=checkpoint, spec=None, manifest=manifest)  # type: ignore[arg-type]

    # files: artifact.json entries first, then the conventional names
    if export_dir is not None:
        for entry in _artifact_entries(manifest):
            rel = entry.get("file") or entry.get("path")
            if rel and (export_dir / rel).is_file():  # before any parser meets a damaged file
                check_sha256(export_dir / rel, entry.get("sha256"), BenchError)
            prec, fmt = entry.get("precision"), str(entry.get("format", "")).lower()
            if not rel or prec not in ONNX_NAMES or entry.get("streaming"):
                continue  # a streaming model takes frames, not clips: edgekd.bench.streaming measures it
            f = export_dir / rel
            if not f.is_file():
                continue
            if fmt.startswith("onnx") or f.suffix == ".onnx":
                target.onnx.setdefault(prec, f)
            elif fmt in ("tensorrt", "engine", "trt") or f.suffix in (".engine", ".plan"):
                target.engines.setdefault(prec, f)
            if (shape := _input_shape(entry)) is not None:
                target.declared_inputs.append((f"{art.name} entry {rel}", shape))
        for prec, fname in ONNX_NAMES.items():
            if (export_dir / fname).is_file():
                target.onnx.setdefault(prec, export_dir / fname)
        for f in list(export_dir.glob("*.engine")) + list(export_dir.glob("*.plan")):
            prec = next((p for p in ONNX_NAMES if f".{p}." in f.name), None)
            if prec:
                target.engines.setdefault(prec, f)
        for prec, f in target.onnx.items():
            target.declared_inputs.append((str(f), _onnx_input_shape(f)))
        if (shape := _input_shape(manifest)) is not None:
            target.declared_inputs.append((f"{export_dir / 'artifact.json'} input", shape))

    # data spec: artifact.json > checkpoint > ONNX metadata
    spec_dict = manifest.get("data_spec") if isinstance(manifest.get("data_spec"), dict) else None
    if spec_dict is None and ckpt is not None:
        spec_dict = ckpt["data_spec"]
    if spec_dict is None and target.onnx:
        from edgekd.runtime.artifact import read_metadata, spec_from_metadata

        spec_dict = spec_from_metadata(read_metadata(next(iter(target.onnx.values()))))
    if spec_dict is None:
        raise BenchError(f"{path}: no data spec in artifact.json, checkpoint or ONNX metadata",
                         "re-export the run with `edgekd export RUN --force`")
    target.spec = DataSpec.from_dict(spec_dict)

    if ckpt is not None:
        target.student = ckpt["student"]["name"]
        target.dataset = ((ckpt.get("config") or {}).get("data") or {}).get("path")
        ck = manifest.get("checkpoint")
        want = manifest.get("checkpoint_sha256") or (ck.get("sha256") if isinstance(ck, dict) else None)
        if want:
            from edgekd.io import sha256_file

            got = sha256_file(checkpoint)
            if got != want:
                raise BenchError(f"{checkpoint} (sha256 {got[:12]}) is not the checkpoint {export_dir} was exported "
                                 f"from (sha256 {want[:12]})",
                                 "re-export the run (`edgekd export RUN --force`) so artifacts and checkpoint agree")
            target.checkpoint_sha256 = got
    else:
        st = manifest.get("student")
        target.student = st if isinstance(st, str) else (st.get("name") if isinstance(st, dict) else None)
    return target
