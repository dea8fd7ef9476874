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

import os
import shutil
import tempfile
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from edgekd.errors import CheckpointError, ConfigError, ExportError


def load_student(ckpt_path: Path):
    """(checkpoint dict, student in eval mode, DataSpec); CheckpointError for anything unusable."""
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    student = ckpt.get("student")
    if not isinstance(student, dict) or "name" not in student or "data_spec" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{ckpt_path} lacks the student/data_spec/state_dict entries of an edgekd checkpoint",
                              "pass a checkpoint.pt written by `edgekd distill`")
    try:
        model, spec = build_student_from_checkpoint(ckpt)
    except ConfigError as e:
        raise CheckpointError(f"{ckpt_path}: {e.message} (the student named inside the checkpoint)",
                              (e.hint + "; " if e.hint else "") +
                              "the checkpoint may come from a newer edgekd - upgrade, or re-run `edgekd distill`") from e
    return ckpt, model, spec


def _is_export_dir(d: Path) -> bool:
    from edgekd.runtime.artifact import ARTIFACT_FILE

    return (d / ARTIFACT_FILE).is_file() or (d / "student.onnx").is_file()


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
    for f in stage.iterdir():
        f.chmod((0o777 if os.access(f, os.X_OK) else 0o666) & ~umask)


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
    """What to export and how to prove it; `export_run(run, **fields)` builds one from keywords.

    data: dataset for parity/calibration/accuracy clips (default: the one the checkpoint trained on,
    falling back to the embedded synthetic dataset). eval_clips: clips for the accuracy figures (None:
    the whole test split, the clips bench and training evaluate on). tolerances: {"fp32"|"fp16"|"int8":
    Tolerance} overrides. precision: the TensorRT engine's precision ("fp16" | "int8" | "fp32").
    """

    out_dir: str | Path | None = None
    opset: int = 17
    int8: bool = True
    trt: bool = False
    precision: str = "fp16"
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


@dataclass
class _Job:
    """An ExportRequest resolved: the student, its spec, the profile, where things go."""

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


def export_run(run_or_checkpoint: str | Path, out_dir: str | Path | None = None, *, reporter=None,
               request: ExportRequest | None = None, **fields: Any) -> Path:
    """Export a run (or checkpoint.pt) and prove every artifact against PyTorch; returns the export folder."""
    from edgekd.checkpoint import resolve_checkpoint_path
    from edgekd.export.int8 import Int8Settings
    from edgekd.export.onnx_export import check_opset
    from edgekd.export.parity import TOLERANCES
    from edgekd.report import Reporter
    from edgekd.runtime.artifact import INPUT_NAME
    from edgekd.runtime.profiles import load_profile

    req = request or ExportRequest(out_dir=out_dir, **fields)
    rep = reporter or Reporter.quiet()
    check_opset(req.opset)
    if req.parity_clips < 2:
        raise ConfigError("parity needs at least 2 clips (their logits must vary)", "pass --parity-clips 8 or more")
    ckpt_path = resolve_checkpoint_path(run_or_checkpoint)
    ckpt, model, spec = load_student(ckpt_path)
    job = _Job(req=req, rep=rep, ckpt=ckpt, ckpt_path=ckpt_path, model=model, spec=spec,
               name=ckpt["student"]["name"],
               out_dir=Path(req.out_dir) if req.out_dir is not None else ckpt_path.parent / "export",
               prof=load_profile(req.profile) if req.profile is not None else None,
               tol={**TOLERANCES, **(req.tolerances or {})},
               settings=(req.int8_settings or Int8Settings()).check())
    _check_out_dir(job.out_dir, req.force)
    if req.trt:  # validate the TensorRT request before any long work
        from edgekd.export.tensorrt import make_request

        make_request(job.out_dir, onnx="student.onnx", precision=req.precision, input_name=INPUT_NAME,
                     input_dims=spec.input_shape(1)[1:], profile=job.prof, dla=req.dla, dla_core=req.dla_core,
                     fp16_layers=tuple(req.fp16_layers), fixed_batch=None if req.dynamic_batch else 1)
    rep.step(f"exporting {job.name} from {ckpt_path} (input 3x{spec.frames}x{spec.size}x{spec.size}, "
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
    rep.done(f"wrote {job.out_dir / 'artifact.json'} ({len(artifact['artifacts'])} artifacts)")
    return job.out_dir


def _export(stage: Path, job: _Job) -> dict[str, Any]:
    from edgekd.runtime.artifact import file_entry
    from edgekd.export.int8 import quantize_int8
    from edgekd.export.onnx_export import export_onnx
    from edgekd.export.parity import Comparator, noise_inputs
    from edgekd.io import sha256_file, write_json
    from edgekd.runtime.artifact import ARTIFACT_FILE, ARTIFACT_FORMAT, library_versions, now
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.metrics import agreement, classification
    from edgekd.runtime.runners import OrtRunner, TorchRunner, logits

    req, rep, spec = job.req, job.rep, job.spec
    ckpt_sha = sha256_file(job.ckpt_path)

    # 1. ONNX -------------------------------------------------------------------------------------
    with _Stopwatch() as t:
        info = export_onnx(job.model, spec, stage / "student.onnx", student_name=job.name, opset=req.opset,
                           dynamic_batch=req.dynamic_batch, simplify=req.simplify,
                           extra_metadata={"checkpoint_sha256": ckpt_sha})
    rep.done(f"student.onnx: opset {req.opset}, {info.num_nodes} nodes, input {info.input_shape}"
             f"{', simplified by ' + info.simplified if info.simplified else ''} ({t.seconds:.1f} s)")

    # 2. clips: the eval set (parity = its first clips, accuracy = all), train split for calibration -----
    data = req.data if req.data is not None else _dataset_of(job.ckpt)
    ev = build_evalset(data, spec, split="test", limit=req.eval_clips if req.int8 else req.parity_clips,
                       fallback_split="train", dataset_fallback=True, strict=False, reporter=rep)
    if ev.note:
        rep.warn(ev.note)
    need_calib = req.int8 or (req.trt and req.precision == "int8")
    calib = build_evalset(data, spec, split="train", limit=job.settings.calibration_clips, fallback_split="test",
                          dataset_fallback=True, strict=False, reporter=rep) if need_calib else None
    x_par = ev.x[:req.parity_clips]
    rep.done(f"{len(ev)} {ev.split} clips from {ev.source}" + (f", {len(calib)} {calib.split} clips for calibration"
                                                              if calib is not None else ""))

    # 3. PyTorch reference and FP32 ONNX Runtime parity ------------------------------------------
    reference = TorchRunner(job.model, "cpu", "fp32")
    reference.load()
    cmp = Comparator(reference, x_par, noise_inputs(spec, req.noise_inputs, seed=0))
    fp32 = OrtRunner(stage / "student.onnx", "cpu", "fp32")
    fp32.load()
    par32 = cmp.judge(fp32, "student.onnx (ONNX Runtime FP32)", job.tol["fp32"])
    _say_parity(rep, "FP32 ONNX Runtime", par32)
    artifacts = [file_entry(stage, "student.onnx", fmt="onnx", precision="fp32", runtime="onnxruntime",
                            opset=req.opset, nodes=info.num_nodes, simplified=info.simplified, parity=par32,
                            input={"name": info.input_name, "shape": info.input_shape})]

    # 4. INT8 QDQ --------------------------------------------------------------------------------
    if req.int8:
        with _Stopwatch() as t:
            q = quantize_int8(stage / "student.onnx", stage / "student.int8.onnx", calib.x, job.settings,
                              input_name=info.input_name)
        rep.done(f"student.int8.onnx: {q['method']} calibration on {q['calibration_clips']} {calib.split} clips, "
                 f"{q['weights']} weights, {q['activations']} activations ({t.seconds:.1f} s)")
        int8 = OrtRunner(stage / "student.int8.onnx", "cpu", "int8")
        int8.load()
        par8 = cmp.judge(int8, "student.int8.onnx (ONNX Runtime INT8)", job.tol["int8"])
        _say_parity(rep, "INT8 ONNX Runtime", par8)
        with rep.bar("FP32 on eval clips", len(ev)) as bar:
            f32 = logits(fp32, ev.x, 8, bar.advance)
        with rep.bar("INT8 on eval clips", len(ev)) as bar:
            i8 = logits(int8, ev.x, 8, bar.advance)
        m32, m8 = classification(f32, ev.labels), classification(i8, ev.labels)
        acc32, acc8 = m32["top1"], m8["top1"]
        artifacts[0]["accuracy"] = {**ev.describe(), "top1": acc32, "top5": m32["top5"]}
        accuracy = {**ev.describe(), "fp32_top1": acc32, "top1": acc8, "top5": m8["top5"],
                    "delta": None if acc32 is None else acc8 - acc32, "agreement_with_fp32": agreement(f32, i8)}
        rep.done("INT8 accuracy on " + (f"{len(ev)} {ev.split} clips: {acc8:.3f} vs FP32 {acc32:.3f} "
                                         f"(Δ {acc8 - acc32:+.3f}), " if acc32 is not None else
                                         f"{len(ev)} clips (labels are not the checkpoint's classes): ")
                 + f"agreement with FP32 {accuracy['agreement_with_fp32']:.3f}")
        artifacts.append(file_entry(stage, "student.int8.onnx", fmt="onnx", precision="int8", runtime="onnxruntime",
                                    opset=req.opset, quantization=q, parity=par8, accuracy=accuracy,
                                    calibration=calib.describe(),
                                    input={"name": info.input_name, "shape": info.input_shape}))
        int8.close()
    fp32.close()

    # 5. TensorRT: engine where importable, else the build-on-target manifest ---------------------
    readiness = None
    prof = job.prof
    if prof is not None and prof.tensorrt_version:
        from edgekd.export.readiness import check_readiness

        r = check_readiness(stage / "student.onnx", prof, req.precision if req.trt else "fp16")
        readiness = {k: v for k, v in r.to_dict().items() if k != "operators"}
        dla_text = {"dla": "runs on DLA", "dla+gpu": "DLA with GPU fallback", "fail": "DLA not usable"}
        (rep.done if r.trt_ok else rep.warn)(f"TensorRT readiness on {prof.name}: "
                                             f"{'builds' if r.trt_ok else 'will not build'}"
                                             + (f", {dla_text[r.dla_verdict]}" if r.dla_cores else "")
                                             + " (details: edgekd export --check-trt)")
    if req.trt:
        artifacts.append(_tensorrt(stage, job, info, calib, cmp))

    try:
        ck_rel = os.path.relpath(job.ckpt_path.resolve(), job.out_dir.resolve())
    except ValueError:  # different drives (Windows)
        ck_rel = str(job.ckpt_path.resolve())
    artifact = {
        "kind": ARTIFACT_FORMAT,
        "format": "onnx", "precision": "fp32", "file": "student.onnx",
        "input": {"name": info.input_name, "shape": info.input_shape, "dtype": "float32", "layout": "NCTHW",
                  "dynamic_axes": {k: {str(a): n for a, n in v.items()} for k, v in info.dynamic_axes.items()}},
        "outputs": [{"name": n, "shape": info.output_shape} for n in info.output_names],
        "opset": req.opset,
        "data_spec": spec.to_dict(),
        "student": {"name": job.name, "kwargs": job.ckpt["student"].get("kwargs", {})},
        "checkpoint": {"path": ck_rel, "sha256": ckpt_sha, "metrics": job.ckpt.get("metrics") or {}},
        "checkpoint_sha256": ckpt_sha,
        "parity_inputs": {"clips": ev.describe() | {"clips": len(x_par)}, "noise": len(cmp.noise),
                          "noise_kind": "standard normal, seed 0"},
        "eval": ev.describe(),
        "artifacts": artifacts,
        "tensorrt_readiness": readiness,
        "libraries": library_versions(),
        "created": now(),
    }
    write_json(stage / ARTIFACT_FILE, artifact)
    return artifact


def _say_parity(rep, label: str, p: dict[str, Any]) -> None:
    c = p["clips"]
    rep.done(f"parity {label} vs PyTorch on {c['n']} clips: max |Δ| {c['max_abs']:.2e}, "
             f"cosine ≥ {c['cosine_min']:.5f}, top-1 agreement {c['top1_agreement']:.3f}"
             + (f"; noise max |Δ| {p['noise']['max_abs']:.2e}" if p.get("noise") else ""))


def _tensorrt(stage: Path, job: _Job, info, calib, cmp) -> dict[str, Any]:
    from edgekd.runtime.artifact import file_entry
    from edgekd.export.tensorrt import build_engine, make_request, tensorrt_status, write_build_manifest
    from edgekd.io import sha256_file
    from edgekd.runtime.runners import TensorRTRunner

    req, rep, prof, precision = job.req, job.rep, job.prof, job.req.precision
    breq = make_request(stage, onnx="student.onnx", precision=precision, input_name=info.input_name,
                        input_dims=job.spec.input_shape(1)[1:], profile=prof, dla=req.dla, dla_core=req.dla_core,
                        fp16_layers=tuple(req.fp16_layers), fixed_batch=None if req.dynamic_batch else 1)
    trt, reason = tensorrt_status()
    calib_x = calib.x if calib is not None and precision == "int8" else None
    manifest = write_build_manifest(breq, profile=prof, calib=calib_x,
                                    calib_source=calib.describe() if calib is not None else None,
                                    onnx_sha256=sha256_file(stage / "student.onnx"),
                                    reason="" if trt else reason, built_here=trt is not None)
    target = manifest["target"]
    if trt is None:
        rep.warn(f"{reason}: no engine built here; wrote build_manifest.json + build_engine.sh - run "
                 f"`bash build_engine.sh` on the target ({target['device']}) to build {breq.engine}")
        return file_entry(stage, "build_manifest.json", fmt="tensorrt-build-manifest", precision=precision,
                          built=False, reason=reason, engine=breq.engine, script="build_engine.sh",
                          calibration_clips=breq.calib_clips, trtexec=manifest["trtexec"]["command"],
                          target=target, portability=manifest["portability"], status="on target")
    meta = build_engine(breq, calib_x, reporter=rep)
    with TensorRTRunner(stage / breq.engine, None, precision) as engine:
        par = cmp.judge(engine, f"{breq.engine} (TensorRT {precision})", job.tol[precision])
    _say_parity(rep, f"TensorRT {precision}", par)
    if prof is not None and not any(m.lower() in meta["gpu"].lower() for m in [prof.device, prof.name]):
        rep.warn(f"engine built for {meta['gpu']} (TensorRT {meta['tensorrt']}), not for {prof.device}: "
                 "rebuild on the target with build_engine.sh")
    return file_entry(stage, breq.engine, fmt="tensorrt", precision=precision, metadata=breq.engine + ".json",
                      engine=meta, parity=par, build_manifest="build_manifest.json",
                      input={"name": info.input_name, "shape": meta["input"]["max"]})
