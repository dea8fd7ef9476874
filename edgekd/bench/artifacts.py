"""Find what to benchmark: a run folder, its export folder, or a checkpoint.

    runs/NAME/                 checkpoint.pt (+ export/ when `edgekd export` ran)
    runs/NAME/export/          artifact.json and the files it lists (edgekd.runtime.artifact.FILES),
                               written by edgekd.export; an engine built on the target from the
                               build manifest is found under the name the manifest gives it
    runs/NAME/checkpoint.pt

The files come from artifact.json (each checked against its recorded sha256 before anything reads
it), or, in an export folder without one, from the ONNX names of the file table. The data spec comes
from artifact.json, else the checkpoint, else the ONNX file's metadata. When artifact.json records the
checkpoint's sha256, the checkpoint found next to it must match: the PyTorch reference has to be the
model that was exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.data.spec import DataSpec
from edgekd.errors import BenchError
from edgekd.runtime.artifact import ARTIFACT_FILE, ONNX_NAMES, Artifact, check_sha256

CHECKPOINT = "checkpoint.pt"


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
    artifact: Artifact | None = None            # artifact.json (None: an export folder without one)
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
    return p / "bench" if (p / CHECKPOINT).is_file() else p.parent / "bench"


def _onnx_input_shape(path: Path) -> list[Any]:
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends: a damaged file
        raise BenchError(f"{path} is not a readable ONNX file ({type(e).__name__})",
                         "re-export the run: edgekd export RUN --force") from e
    dims = m.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param if d.dim_param else d.dim_value for d in dims]


def _locate(path: Path) -> tuple[Path | None, Path | None, Path | None]:
    """(run folder, export folder, checkpoint) for what the user passed."""
    if not path.exists():
        raise BenchError(f"{path} does not exist", "pass a run folder (runs/NAME) or its export folder")
    if path.is_file():
        if path.suffix != ".pt":
            raise BenchError(f"{path} is not a run folder, export folder or {CHECKPOINT}",
                             "pass runs/NAME or runs/NAME/export")
        run_dir, checkpoint, export_dir = path.parent, path, None
    elif (path / CHECKPOINT).is_file():
        run_dir, checkpoint, export_dir = path, path / CHECKPOINT, None
    else:
        return (path.parent, path, path.parent / CHECKPOINT) if (path.parent / CHECKPOINT).is_file() else (None, path, None)
    return run_dir, (run_dir / "export" if (run_dir / "export").is_dir() else None), checkpoint


def _read_artifact(export_dir: Path | None) -> Artifact | None:
    if export_dir is None:
        return None
    if (export_dir / ARTIFACT_FILE).is_file():
        return Artifact.load(export_dir, BenchError)
    if not any(export_dir.glob("*.onnx")):
        raise BenchError(f"{export_dir} holds no {ARTIFACT_FILE}, ONNX file or {CHECKPOINT}",
                         "run `edgekd export RUN` first, or pass the run folder")
    return None


def _collect_files(target: Target) -> None:
    """The clip models by precision: artifact.json's entries, each checked against its sha256 first."""
    d, art = target.export_dir, target.artifact
    for e in art.files if art is not None else ():
        f = d / e["file"]
        if f.is_file():  # before any parser meets a damaged file
            check_sha256(f, e.get("sha256"), BenchError)
        if e.get("format") == "tensorrt-build-manifest" and (d / e["engine"]).is_file():
            target.engines.setdefault(e["precision"], d / e["engine"])  # built on the target by its script
        if e.get("streaming") or e["precision"] not in ONNX_NAMES or not f.is_file():
            continue  # a streaming model takes frames, not clips: edgekd.bench.streaming measures it
        found = {"onnx": target.onnx, "tensorrt": target.engines}.get(e.get("format"))
        if found is not None:
            found.setdefault(e["precision"], f)
            if "shape" in (e.get("input") or {}):
                target.declared_inputs.append((f"{ARTIFACT_FILE} entry {e['file']}", list(e["input"]["shape"])))
    if art is None:
        target.onnx.update({p: d / n for p, n in ONNX_NAMES.items() if (d / n).is_file()})
    target.declared_inputs += [(str(f), _onnx_input_shape(f)) for f in target.onnx.values()]
    if art is not None and "shape" in art.input:
        target.declared_inputs.append((f"{d / ARTIFACT_FILE} input", list(art.input["shape"])))


def _spec(path: Path, target: Target, ckpt: dict[str, Any] | None) -> DataSpec:
    """artifact.json's data spec, else the checkpoint's, else the ONNX file's metadata."""
    spec = target.artifact.data_spec if target.artifact is not None else None
    if not spec and ckpt is not None:
        spec = ckpt["data_spec"]
    if not spec and target.onnx:
        from edgekd.runtime.artifact import read_metadata, spec_from_metadata

        spec = spec_from_metadata(read_metadata(next(iter(target.onnx.values()))))
    if not spec:
        raise BenchError(f"{path}: no data spec in {ARTIFACT_FILE}, checkpoint or ONNX metadata",
                         "re-export the run with `edgekd export RUN --force`")
    return DataSpec.from_dict(spec)


def resolve(path: str | Path) -> Target:
    """A Target for a run folder, an export folder or a checkpoint file."""
    from edgekd.checkpoint import load_checkpoint
    from edgekd.io import sha256_file

    path = Path(path)
    run_dir, export_dir, checkpoint = _locate(path)
    art = _read_artifact(export_dir)
    if checkpoint is None and art is not None and art.checkpoint.get("path"):
        cand = export_dir / art.checkpoint["path"]
        checkpoint = cand if cand.is_file() else None
    ckpt = load_checkpoint(checkpoint) if checkpoint is not None else None
    target = Target(name=(run_dir or (export_dir.parent if export_dir else path)).name, run_dir=run_dir,
                    export_dir=export_dir, checkpoint=checkpoint, spec=None, artifact=art)  # type: ignore[arg-type]
    if export_dir is not None:
        _collect_files(target)
    target.spec = _spec(path, target, ckpt)
    if ckpt is None:
        target.student = art.student.get("name") if art is not None else None
        return target
    target.student = ckpt["student"]["name"]
    target.dataset = ((ckpt.get("config") or {}).get("data") or {}).get("path")
    if want := (art.checkpoint_sha256 if art is not None else None):
        got = sha256_file(checkpoint)
        if got != want:
            raise BenchError(f"{checkpoint} (sha256 {got[:12]}) is not the checkpoint {export_dir} was exported "
                             f"from (sha256 {want[:12]})",
                             "re-export the run (`edgekd export RUN --force`) so artifacts and checkpoint agree")
        target.checkpoint_sha256 = got
    return target
