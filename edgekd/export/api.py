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
    fp16_onnx: bool = True                     # student.fp16.onnx (FP32 I/O) for ORT CUDA / Triton
    cpu_int8: str = "auto"                     # student.int8-cpu.onnx: "auto" (only if faster), "always", "never"
    implicit_int8: bool = False                # TensorRT 8.x fallback: calibrate on the target, not the Q/DQ file
    deepstream: bool = False                   # deepstream/ bundle (edgekd.export.deepstream)
    triton: bool = False                       # triton/ model repository (edgekd.export.triton)
    max_batch: int = 4                         # DeepStream batch / Triton max_batch_size
    streaming: bool = False                    # student.stream.onnx: frame in, logits out (edgekd.export.streaming)


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
    if req.streaming:  # an offline-shift student cannot stream: say so before any long work
        from edgekd.export.streaming import check_streamable

        check_streamable(model, job.name)
    if req.cpu_int8 not in ("auto", "always", "never"):
        raise ConfigError(f"--cpu-int8 must be auto, always or never, not {req.cpu_int8!r}")
    if req.max_batch < 1:
        raise ConfigError("--max-batch must be at least 1")
    if req.trt and req.precision == "int8" and not (req.int8 or req.implicit_int8):
        raise ConfigError("an INT8 engine compiles student.int8.onnx, which --no-quantize turns off",
                          "drop --no-quantize (or add --trt-implicit-int8 for a TensorRT 8.x calibrated engine)")
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
    from edgekd.export.onnx_export import export_onnx
    from edgekd.export.parity import Comparator, noise_inputs
    from edgekd.io import sha256_file, write_json
    from edgekd.runtime.artifact import ARTIFACT_FILE, ARTIFACT_FORMAT, library_versions, now, preprocess_contract
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.metrics import classification
    from edgekd.export.variants import runtime_map
    from edgekd.runtime.runners import OrtRunner, TorchRunner, logits

    req, rep, spec = job.req, job.rep, job.spec
    ckpt_sha = sha256_file(job.ckpt_path)

    # 1. ONNX, carrying the preprocessing contract of the dataset's evaluation clips -------------------
    data = req.data if req.data is not None else _dataset_of(job.ckpt)
    meta = {"checkpoint_sha256": ckpt_sha, "preprocess": preprocess_contract(spec, _decode_short_side(data, spec))}
    with _Stopwatch() as t:
        info = export_onnx(job.model, spec, stage / "student.onnx", student_name=job.name, opset=req.opset,
                           dynamic_batch=req.dynamic_batch, simplify=req.simplify, extra_metadata=meta)
    rep.done(f"student.onnx: opset {req.opset}, {info.num_nodes} nodes, input {info.input_shape}"
             f"{', simplified by ' + info.simplified if info.simplified else ''} ({t.seconds:.1f} s)")

    # 2. clips: the eval set (parity = its first clips, accuracy = all), train split for calibration -----
    ev = build_evalset(data, spec, split="test", limit=req.eval_clips if req.int8 or req.fp16_onnx else req.parity_clips,
                       fallback_split="train", dataset_fallback=True, strict=False, reporter=rep)
    if ev.note:
        rep.warn(ev.note)
    need_calib = req.int8 or (req.trt and req.implicit_int8)
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

    # 4. INT8 (TensorRT-rules Q/DQ, + the CPU variant when it pays) and FP16 ONNX ---------------------
    cpu_choice = fp16_record = None
    if req.int8 or req.fp16_onnx:
        from edgekd.export.variants import eval_batch, fp16_artifact, int8_artifacts

        with rep.bar("FP32 on eval clips", len(ev)) as bar:
            f32 = logits(fp32, ev.x, eval_batch(fp32), bar.advance)
        m32 = classification(f32, ev.labels)
        artifacts[0]["accuracy"] = {**ev.describe(), "top1": m32["top1"], "top5": m32["top5"]}
        if req.int8:
            entries, cpu_choice = int8_artifacts(stage, rep=rep, settings=job.settings, info=info, ev=ev, calib=calib,
                                                 cmp=cmp, f32=f32, tol=job.tol, opset=req.opset, cpu_int8=req.cpu_int8)
            artifacts += entries
        if req.fp16_onnx:
            entry, fp16_record = fp16_artifact(stage, rep=rep, info=info, ev=ev, cmp=cmp, f32=f32, tol=job.tol,
                                               opset=req.opset)
            artifacts += [entry] if entry else []
    if req.streaming:
        from edgekd.export.streaming import stream_artifacts

        artifacts += stream_artifacts(stage, rep=rep, model=job.model, spec=spec, name=job.name, opset=req.opset,
                                      cmp=cmp, clip_onnx=fp32, tol=job.tol, fp16=req.fp16_onnx,
                                      calib=calib if req.int8 else None, int8_settings=job.settings,
                                      extra_metadata=meta)
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
    bundles = _bundles(stage, job, info, artifacts)

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
        "deploy": {"runtimes": runtime_map(artifacts, cpu_choice), "cpu_int8": cpu_choice, "fp16_onnx": fp16_record,
                   "bundles": bundles},
        "tensorrt_readiness": readiness,
        "libraries": library_versions(),
        "created": now(),
    }
    write_json(stage / ARTIFACT_FILE, artifact)
    return artifact


def _decode_short_side(data, spec) -> int:
    """The short side evaluation decodes to (the dataset's short_side_ratio x the clip size)."""
    from edgekd.data.transforms import AugmentConfig
    from edgekd.runtime.evalset import open_dataset

    manifest, _, _ = open_dataset(data, fallback=True)
    return AugmentConfig.for_manifest(manifest.defaults).decode_size(spec.size)


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
    explicit = precision == "int8" and not req.implicit_int8  # compile the Q/DQ file measured on CPU
    breq = make_request(stage, onnx="student.int8.onnx" if explicit else "student.onnx", precision=precision,
                        implicit_int8=req.implicit_int8 and precision == "int8", input_name=info.input_name,
                        input_dims=job.spec.input_shape(1)[1:], profile=prof, dla=req.dla, dla_core=req.dla_core,
                        fp16_layers=tuple(req.fp16_layers), fixed_batch=None if req.dynamic_batch else 1)
    trt, reason = tensorrt_status()
    calib_x = calib.x if calib is not None and breq.calib_clips else None
    manifest = write_build_manifest(breq, profile=prof, calib=calib_x,
                                    calib_source=calib.describe() if calib is not None else None,
                                    onnx_sha256=sha256_file(stage / breq.onnx),
                                    reason="" if trt else reason, built_here=trt is not None)
    target = manifest["target"]
    if trt is None:
        rep.warn(f"{reason}: no engine built here; wrote build_manifest.json + build_engine.sh - run "
                 f"`bash build_engine.sh` on the target ({target['device']}) to build {breq.engine}")
        return file_entry(stage, "build_manifest.json", fmt="tensorrt-build-manifest", precision=precision,
                          built=False, reason=reason, engine=breq.engine, script="build_engine.sh",
                          calibration_clips=breq.calib_clips, onnx=breq.onnx, quantization=manifest["quantization"],
                          trtexec=manifest["trtexec"]["command"],
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


def _bundles(stage: Path, job: _Job, info, artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    """DeepStream / Triton folders written from the staged files (they move into place with them)."""
    out: dict[str, Any] = {}
    if job.req.deepstream:
        from edgekd.export.deepstream import write_bundle

        out["deepstream"] = write_bundle(stage, spec=job.spec, name=job.name, precision=job.req.precision,
                                         max_batch=job.req.max_batch, input_name=info.input_name,
                                         decode_short_side=_decode_short_side(job.req.data or _dataset_of(job.ckpt),
                                                                              job.spec))
        job.rep.done(f"deepstream/: {', '.join(out['deepstream']['files'])} - run: {out['deepstream']['run']}")
    if job.req.triton:
        from edgekd.export.triton import write_repository

        out["triton"] = write_repository(stage, spec=job.spec, name=job.name, max_batch=job.req.max_batch,
                                         input_name=info.input_name, output_name=info.output_names[0])
        job.rep.done(f"triton/: models {', '.join(out['triton']['models'])} - run: {out['triton']['run']}")
        stream = next((a for a in artifacts if a.get("streaming") and a["precision"] == "fp32"), None)
        if stream is not None:
            from edgekd.export.streaming import triton_stream_model

            out["triton"]["stream"] = triton_stream_model(stage, spec=job.spec, name=job.name, iface=stream["interface"],
                                                          max_batch=job.req.max_batch)
            job.rep.done(f"triton/: {out['triton']['stream']['model']} with sequence batching and implicit state")
    return out
