"""`export_run`: checkpoint -> export folder with ONNX, INT8, TensorRT (or its build manifest), artifact.json.

    runs/NAME/checkpoint.pt  ->  runs/NAME/export/
                                   student.onnx          FP32, dynamic batch, metadata, parity-checked
                                   student.int8.onnx     QDQ INT8, calibrated on train clips, parity + accuracy
                                   student.fp16.engine   + .json (TensorRT importable), or
                                   build_manifest.json + build_engine.sh (+ calib_clips.npy)
                                   artifact.json

Everything is written into a staging folder beside the destination and moved into place only when
every artifact has passed parity, so a failed export never leaves a half-written folder and an
existing export is replaced (with `force=True` only) in one rename.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from edgekd.errors import ExportError
from edgekd.export.formats import DEFAULT_FORMATS, FORMATS, say_parity, check_request, formats_from_flags
from edgekd.runtime.artifact import ARTIFACT_FILE, FILES


def _is_export_dir(d: Path) -> bool:
    return (d / ARTIFACT_FILE).is_file() or (d / FILES["onnx"]).is_file()


def _check_out_dir(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"output {out_dir} is a file, not a folder", "pass --out with a folder path")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not _is_export_dir(out_dir):
            raise ExportError(f"{out_dir} is not empty and is not an edgekd export folder; refusing to replace it",
                              "pass --out with an empty or new folder")
        if not force:
            raise ExportError(f"{out_dir} already holds an export", "pass --force to replace it")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the output folder {out_dir}: {e.strerror}",
                          "pass --out with a folder you can write to") from e
    if not os.access(out_dir.parent, os.W_OK | os.X_OK) or (out_dir.is_dir() and not os.access(out_dir, os.W_OK)):
        raise ExportError(f"the output folder {out_dir} is not writable", "pass --out with a folder you can write to")


def _publish_modes(stage: Path) -> None:
    """Staging files are created private (mkstemp/mkdtemp: 0600/0700); give them the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(0o777 & ~umask)
    for f in stage.rglob("*"):  # bundles (deepstream/, triton/) are folders
        f.chmod((0o777 if f.is_dir() or os.access(f, os.X_OK) else 0o666) & ~umask)


def _commit(stage: Path, out_dir: Path) -> None:
    """Move the staged export into place; an old export is swapped out, then deleted."""
    _publish_modes(stage)
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        old.rmdir()
        out_dir.rename(old)
    stage.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _dataset_of(ckpt: dict[str, Any]) -> str | None:
    data = (ckpt.get("config") or {}).get("data") or {}
    return data.get("path") if isinstance(data, dict) else None


class _Stopwatch:
    def __enter__(self) -> "_Stopwatch":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0


@dataclass
class ExportRequest:
    """What to export and how to prove it; `export_run(run, **fields)` builds one from keywords, where the
    old switches int8=, fp16_onnx=, trt=, deepstream=, triton=, streaming= edit `formats`.

    formats: names from edgekd.export.formats.FORMATS (onnx is always written). data: dataset for
    parity/calibration/accuracy clips (default: the one the checkpoint trained on, falling back to the
    embedded synthetic dataset). eval_clips: clips for the accuracy figures (None: the whole test split,
    the clips bench and training evaluate on). tolerances: {"fp32"|"fp16"|"int8": Tolerance} overrides.
    precision: the TensorRT / DeepStream engine's precision ("fp16" | "int8" | "fp32"; None: fp16).
    """

    out_dir: str | Path | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    opset: int = 17
    precision: str | None = None
    profile: Any = None                        # name, TOML path or Profile (TensorRT batch range, DLA)
    force: bool = False
    data: str | Path | None = None
    parity_clips: int = 16
    noise_inputs: int = 4
    eval_clips: int | None = None
    int8_settings: Any = None                  # edgekd.export.int8.Int8Settings
    tolerances: dict[str, Any] = field(default_factory=dict)
    dla: bool = False
    dla_core: int = 0
    fp16_layers: tuple[str, ...] = ()
    simplify: bool = True
    dynamic_batch: bool = True
    cpu_int8: str = "auto"                     # student.int8-cpu.onnx: "auto" (only if faster), "always", "never"
    implicit_int8: bool = False                # TensorRT 8.x fallback: calibrate on the target, not the Q/DQ file
    max_batch: int = 4                         # DeepStream batch / Triton max_batch_size

    @property
    def engine_precision(self) -> str:
        return self.precision or "fp16"

    @classmethod
    def from_fields(cls, *, formats: tuple[str, ...] | str | None = None, int8: bool | None = None,
                    fp16_onnx: bool | None = None, trt: bool = False, deepstream: bool = False, triton: bool = False,
                    streaming: bool = False, **fields: Any) -> "ExportRequest":
        return cls(formats=formats_from_flags(formats, int8=int8, fp16_onnx=fp16_onnx, trt=trt, deepstream=deepstream,
                                              triton=triton, streaming=streaming), **fields)


@dataclass
class _Job:
    """An ExportRequest resolved (the student, its spec, the profile, where things go) and, as the export
    runs, what the format writers share: student.onnx's info, the clips, the comparator, the entries."""

    req: ExportRequest
    rep: Any
    ckpt: dict[str, Any]
    ckpt_path: Path
    model: Any
    spec: Any
    name: str
    out_dir: Path
    prof: Any
    tol: dict[str, Any]
    settings: Any
    ckpt_sha: str = ""
    data: Any = None                           # the dataset the clips come from
    decode_short_side: int = 0                 # the short side evaluation decodes to
    metadata: dict[str, Any] = field(default_factory=dict)  # written into every ONNX file (the contract)
    info: Any = None                           # edgekd.export.onnx_export.OnnxInfo of student.onnx
    ev: Any = None                             # eval clips (parity = the first ones, accuracy = all)
    calib: Any = None                          # train clips for INT8 calibration
    cmp: Any = None                            # the Comparator against PyTorch
    fp32: Any = None                           # student.onnx loaded in ONNX Runtime
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    deploy: dict[str, Any] = field(default_factory=lambda: {"cpu_int8": None, "fp16_onnx": None, "bundles": {}})
    _f32: Any = None

    def f32(self):
        """FP32 ONNX logits on the eval clips, computed once; student.onnx's entry gets its accuracy."""
        if self._f32 is None:
            from edgekd.export.variants import eval_batch
            from edgekd.runtime.metrics import classification
            from edgekd.runtime.runners import logits

            with self.rep.bar("FP32 on eval clips", len(self.ev)) as bar:
                self._f32 = logits(self.fp32, self.ev.x, eval_batch(self.fp32), bar.advance)
            m = classification(self._f32, self.ev.labels)
            self.artifacts[0]["accuracy"] = {**self.ev.describe(), "top1": m["top1"], "top5": m["top5"]}
        return self._f32

    def build_request(self, root: Path):
        """The TensorRT build request (edgekd.runtime.tensorrt.BuildRequest); INT8 compiles the Q/DQ file."""
        from edgekd.export.tensorrt import make_request
        from edgekd.runtime.artifact import INPUT_NAME

        req, precision = self.req, self.req.engine_precision
        implicit = req.implicit_int8 and precision == "int8"
        return make_request(root, onnx=FILES["int8"] if precision == "int8" and not implicit else FILES["onnx"],
                            precision=precision, implicit_int8=implicit, input_name=INPUT_NAME,
                            input_dims=self.spec.input_shape(1)[1:], profile=self.prof, dla=req.dla,
                            dla_core=req.dla_core, fp16_layers=tuple(req.fp16_layers),
                            fixed_batch=None if req.dynamic_batch else 1)


def export_run(run_or_checkpoint: str | Path, out_dir: str | Path | None = None, *, reporter=None,
               request: ExportRequest | None = None, **fields: Any) -> Path:
    """Export a run (or checkpoint.pt) and prove every artifact against PyTorch; returns the export folder."""
    from edgekd.export.onnx_export import check_opset
    from edgekd.report import Reporter

    req = request or ExportRequest.from_fields(out_dir=out_dir, **fields)
    req = dataclasses.replace(req, formats=formats_from_flags(req.formats, cpu_int8=req.cpu_int8))  # the one place
    rep = reporter or Reporter.quiet()
    check_opset(req.opset)
    check_request(req)
    job = _job(run_or_checkpoint, req, rep)
    _check_out_dir(job.out_dir, req.force)
    for name in req.formats:  # what needs the student or the profile, before any long work
        if (check := FORMATS[name].check_job) is not None:
            check(job)
    spec = job.spec
    rep.step(f"exporting {job.name} from {job.ckpt_path} (input 3x{spec.frames}x{spec.size}x{spec.size}, "
             f"{spec.num_classes} classes) to {job.out_dir}")
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{job.out_dir.name}.staging-", dir=job.out_dir.parent))
    except OSError as e:
        raise ExportError(f"the output folder {job.out_dir.parent} is not writable ({e.strerror})",
                          "pass --out with a folder you can write to") from e
    try:
        artifact = _export(stage, job)
        _commit(stage, job.out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    rep.done(f"wrote {job.out_dir / ARTIFACT_FILE} ({len(artifact.files)} artifacts)")
    return job.out_dir


def _job(run_or_checkpoint: str | Path, req: ExportRequest, rep) -> _Job:
    from edgekd.checkpoint import resolve_checkpoint_path
    from edgekd.export.int8 import Int8Settings
    from edgekd.export.onnx_export import load_student
    from edgekd.export.parity import TOLERANCES
    from edgekd.runtime.profiles import load_profile

    ckpt_path = resolve_checkpoint_path(run_or_checkpoint)
    ckpt, model, spec = load_student(ckpt_path)
    return _Job(req=req, rep=rep, ckpt=ckpt, ckpt_path=ckpt_path, model=model, spec=spec,
                name=ckpt["student"]["name"],
                out_dir=Path(req.out_dir) if req.out_dir is not None else ckpt_path.parent / "export",
                prof=load_profile(req.profile) if req.profile is not None else None,
                tol={**TOLERANCES, **(req.tolerances or {})},
                settings=(req.int8_settings or Int8Settings()).check())


def _export(stage: Path, job: _Job):
    """Every requested format into `stage`, each proven against PyTorch; the Artifact written there."""
    from edgekd.export.onnx_export import export_onnx
    from edgekd.export.parity import Comparator, noise_inputs
    from edgekd.io import sha256_file
    from edgekd.runtime.artifact import file_entry, preprocess_contract
    from edgekd.runtime.runners import OrtRunner, TorchRunner

    req, rep, spec, onnx = job.req, job.rep, job.spec, FILES["onnx"]
    job.ckpt_sha = sha256_file(job.ckpt_path)

    # 1. ONNX, carrying the preprocessing contract of the dataset's evaluation clips -------------------
    job.data = req.data if req.data is not None else _dataset_of(job.ckpt)
    job.decode_short_side = _decode_short_side(job.data, spec)
    job.metadata = {"checkpoint_sha256": job.ckpt_sha, "preprocess": preprocess_contract(spec, job.decode_short_side)}
    with _Stopwatch() as t:
        job.info = info = export_onnx(job.model, spec, stage / onnx, student_name=job.name, opset=req.opset,
                                      dynamic_batch=req.dynamic_batch, simplify=req.simplify,
                                      extra_metadata=job.metadata)
    rep.done(f"{onnx}: opset {req.opset}, {info.num_nodes} nodes, input {info.input_shape}"
             f"{', simplified by ' + info.simplified if info.simplified else ''} ({t.seconds:.1f} s)")

    # 2. clips: the eval set (parity = its first clips, accuracy = all), train split for calibration -----
    _clips(job)

    # 3. PyTorch reference and FP32 ONNX Runtime parity ------------------------------------------
    reference = TorchRunner(job.model, "cpu", "fp32")
    reference.load()
    job.cmp = Comparator(reference, job.ev.x[:req.parity_clips], noise_inputs(spec, req.noise_inputs, seed=0))
    job.fp32 = OrtRunner(stage / onnx, "cpu", "fp32")
    job.fp32.load()
    par32 = job.cmp.judge(job.fp32, f"{onnx} (ONNX Runtime FP32)", job.tol["fp32"])
    say_parity(rep, "FP32 ONNX Runtime", par32)
    job.artifacts.append(file_entry(stage, onnx, fmt="onnx", precision="fp32", runtime="onnxruntime",
                                    opset=req.opset, nodes=info.num_nodes, simplified=info.simplified, parity=par32,
                                    input={"name": info.input_name, "shape": info.input_shape}))
    readiness = _readiness(stage, job)

    # 4. every other format, in the table's order -------------------------------------------------
    try:
        for name in req.formats:
            if (write := FORMATS[name].write) is not None:
                write(stage, job)
    finally:
        job.fp32.close()
    artifact = _artifact(job, readiness)
    artifact.write(stage)
    return artifact


def _decode_short_side(data, spec) -> int:
    """The short side evaluation decodes to (the dataset's short_side_ratio x the clip size)."""
    from edgekd.data.transforms import AugmentConfig
    from edgekd.runtime.evalset import open_dataset

    manifest, _, _ = open_dataset(data, fallback=True)
    return AugmentConfig.for_manifest(manifest.defaults).decode_size(spec.size)


def _clips(job: _Job) -> None:
    """The eval clips (the whole test split when accuracy is measured) and, for INT8, calibration clips."""
    from edgekd.runtime.evalset import build_evalset

    req, rep, data = job.req, job.rep, job.data
    accuracy = "int8" in req.formats or "fp16" in req.formats
    job.ev = ev = build_evalset(data, job.spec, split="test", limit=req.eval_clips if accuracy else req.parity_clips,
                                fallback_split="train", dataset_fallback=True, strict=False, reporter=rep)
    if ev.note:
        rep.warn(ev.note)
    if "int8" in req.formats or ("tensorrt" in req.formats and req.implicit_int8):
        job.calib = build_evalset(data, job.spec, split="train", limit=job.settings.calibration_clips,
                                  fallback_split="test", dataset_fallback=True, strict=False, reporter=rep)
    rep.done(f"{len(ev)} {ev.split} clips from {ev.source}" + (f", {len(job.calib)} {job.calib.split} clips for "
                                                              "calibration" if job.calib is not None else ""))


def _readiness(stage: Path, job: _Job) -> dict[str, Any] | None:
    """TensorRT/DLA support of student.onnx on the profile's target, when the profile names a TensorRT."""
    prof = job.prof
    if prof is None or not prof.tensorrt_version:
        return None
    from edgekd.export.readiness import check_readiness

    r = check_readiness(stage / FILES["onnx"], prof, job.req.engine_precision if "tensorrt" in job.req.formats else "fp16")
    dla_text = {"dla": "runs on DLA", "dla+gpu": "DLA with GPU fallback", "fail": "DLA not usable"}
    (job.rep.done if r.trt_ok else job.rep.warn)(f"TensorRT readiness on {prof.name}: "
                                                 f"{'builds' if r.trt_ok else 'will not build'}"
                                                 + (f", {dla_text[r.dla_verdict]}" if r.dla_cores else "")
                                                 + " (details: edgekd export --check-trt)")
    return {k: v for k, v in r.to_dict().items() if k != "operators"}


def _artifact(job: _Job, readiness: dict[str, Any] | None):
    from edgekd.export.variants import runtime_map
    from edgekd.runtime.artifact import Artifact, library_versions, now

    info, ev = job.info, job.ev
    try:
        ck_rel = os.path.relpath(job.ckpt_path.resolve(), job.out_dir.resolve())
    except ValueError:  # different drives (Windows)
        ck_rel = str(job.ckpt_path.resolve())
    return Artifact(
        input={"name": info.input_name, "shape": info.input_shape, "dtype": "float32", "layout": "NCTHW",
               "dynamic_axes": {k: {str(a): n for a, n in v.items()} for k, v in info.dynamic_axes.items()}},
        outputs=[{"name": n, "shape": info.output_shape} for n in info.output_names], opset=job.req.opset,
        data_spec=job.spec.to_dict(), student={"name": job.name, "kwargs": job.ckpt["student"].get("kwargs", {})},
        checkpoint={"path": ck_rel, "sha256": job.ckpt_sha, "metrics": job.ckpt.get("metrics") or {}},
        files=job.artifacts,
        parity_inputs={"clips": ev.describe() | {"clips": len(job.cmp.clips)}, "noise": len(job.cmp.noise),
                       "noise_kind": "standard normal, seed 0"},
        eval=ev.describe(), deploy={"runtimes": runtime_map(job.artifacts, job.deploy["cpu_int8"]), **job.deploy},
        tensorrt_readiness=readiness, libraries=library_versions(), created=now())
