"""The export format table: what each format writes, what it needs, and the function that writes it.

    onnx        student.onnx (always: every other format is made from it)
    int8        student.int8.onnx, Q/DQ by TensorRT's rules        needs calibration clips
    int8-cpu    student.int8-cpu.onnx, kept only when faster        needs int8
    fp16        student.fp16.onnx, FP32 I/O
    stream      student.stream*.onnx, one frame in, state carried   needs an online-shift student
    tensorrt    the engine, or build_manifest.json + build_engine.sh
    deepstream  deepstream/ bundle
    triton      triton/ model repository

`check_request` is the one place flag combinations are judged; `export_run` and `edgekd export` both
call it. Writers run in table order on a job (edgekd.export.api._Job) whose student.onnx, eval clips
and comparator are ready, and append their artifact.json entries to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgekd.errors import ConfigError
from edgekd.runtime.artifact import FILES, ONNX_NAMES


@dataclass(frozen=True)
class Format:
    name: str
    files: tuple[str, ...]                       # keys of edgekd.runtime.artifact.FILES it may write
    needs: tuple[str, ...] = ()                  # formats that must be exported with it
    options: tuple[str, ...] = ()                # ExportRequest fields only this format uses
    write: Callable[[Path, Any], None] | None = None
    check: Callable[[Any], None] | None = None   # a rule on the request of its own (before loading anything)
    check_job: Callable[[Any], None] | None = None  # a rule on the loaded student / profile (before long work)


def say_parity(rep, label: str, p: dict[str, Any]) -> None:
    c = p["clips"]
    rep.done(f"parity {label} vs PyTorch on {c['n']} clips: max |Δ| {c['max_abs']:.2e}, "
             f"cosine ≥ {c['cosine_min']:.5f}, top-1 agreement {c['top1_agreement']:.3f}"
             + (f"; noise max |Δ| {p['noise']['max_abs']:.2e}" if p.get("noise") else ""))


# ----------------------------------------------------------------------------- writers

def _write_int8(stage: Path, job) -> None:
    from edgekd.export.variants import int8_artifact

    entry = int8_artifact(stage, rep=job.rep, settings=job.settings, info=job.info, ev=job.ev, calib=job.calib,
                          cmp=job.cmp, f32=job.f32(), tol=job.tol, opset=job.req.opset)
    job.artifacts.append(entry)
    job.deploy["cpu_int8"] = {"policy": "never", "kept": False, "why": "not asked for (--cpu-int8 never)"}


def _write_cpu_int8(stage: Path, job) -> None:
    from edgekd.export.variants import cpu_int8_artifact

    qdq = next(a for a in job.artifacts if a["file"] == FILES["int8"])
    entry, job.deploy["cpu_int8"] = cpu_int8_artifact(stage, rep=job.rep, settings=job.settings, info=job.info,
                                                      ev=job.ev, calib=job.calib, cmp=job.cmp, f32=job.f32(),
                                                      tol=job.tol, opset=job.req.opset, qdq=qdq,
                                                      policy=job.req.cpu_int8)
    job.artifacts += [entry] if entry else []


def _write_fp16(stage: Path, job) -> None:
    from edgekd.export.variants import fp16_artifact

    entry, job.deploy["fp16_onnx"] = fp16_artifact(stage, rep=job.rep, info=job.info, ev=job.ev, cmp=job.cmp,
                                                   f32=job.f32(), tol=job.tol, opset=job.req.opset)
    job.artifacts += [entry] if entry else []


def _write_stream(stage: Path, job) -> None:
    from edgekd.export.streaming import stream_artifacts

    job.artifacts += stream_artifacts(stage, rep=job.rep, model=job.model, spec=job.spec, name=job.name,
                                      opset=job.req.opset, cmp=job.cmp, clip_onnx=job.fp32, tol=job.tol,
                                      fp16="fp16" in job.req.formats,
                                      calib=job.calib if "int8" in job.req.formats else None,
                                      int8_settings=job.settings, extra_metadata=job.metadata)


def _write_tensorrt(stage: Path, job) -> None:
    from edgekd.export.tensorrt import build_engine, tensorrt_status, write_build_manifest
    from edgekd.io import sha256_file
    from edgekd.runtime.artifact import file_entry
    from edgekd.runtime.runners import TensorRTRunner

    rep, prof, precision = job.rep, job.prof, job.req.engine_precision
    breq = job.build_request(stage)
    trt, reason = tensorrt_status()
    calib, manifest_file, script = job.calib, FILES["build-manifest"], FILES["build-script"]
    calib_x = calib.x if calib is not None and breq.calib_clips else None
    manifest = write_build_manifest(breq, profile=prof, calib=calib_x,
                                    calib_source=calib.describe() if calib is not None else None,
                                    onnx_sha256=sha256_file(stage / breq.onnx),
                                    reason="" if trt else reason, built_here=trt is not None)
    target = manifest["target"]
    if trt is None:
        rep.warn(f"{reason}: no engine built here; wrote {manifest_file} + {script} - run "
                 f"`bash {script}` on the target ({target['device']}) to build {breq.engine}")
        job.artifacts.append(file_entry(
            stage, manifest_file, fmt="tensorrt-build-manifest", precision=precision, built=False, reason=reason,
            engine=breq.engine, script=script, calibration_clips=breq.calib_clips, onnx=breq.onnx,
            quantization=manifest["quantization"], trtexec=manifest["trtexec"]["command"], target=target,
            portability=manifest["portability"], status="on target"))
        return
    meta = build_engine(breq, calib_x, reporter=rep)
    with TensorRTRunner(stage / breq.engine, None, precision) as engine:
        par = job.cmp.judge(engine, f"{breq.engine} (TensorRT {precision})", job.tol[precision])
    say_parity(rep, f"TensorRT {precision}", par)
    if prof is not None and not any(m.lower() in meta["gpu"].lower() for m in [prof.device, prof.name]):
        rep.warn(f"engine built for {meta['gpu']} (TensorRT {meta['tensorrt']}), not for {prof.device}: "
                 f"rebuild on the target with {script}")
    job.artifacts.append(file_entry(stage, breq.engine, fmt="tensorrt", precision=precision,
                                    metadata=breq.engine + ".json", engine=meta, parity=par,
                                    build_manifest=manifest_file,
                                    input={"name": job.info.input_name, "shape": meta["input"]["max"]}))


def _write_deepstream(stage: Path, job) -> None:
    from edgekd.export.deepstream import write_bundle

    b = job.deploy["bundles"]["deepstream"] = write_bundle(
        stage, spec=job.spec, name=job.name, precision=job.req.engine_precision, max_batch=job.req.max_batch,
        input_name=job.info.input_name, decode_short_side=job.decode_short_side)
    job.rep.done(f"{FILES['deepstream']}/: {', '.join(b['files'])} - run: {b['run']}")


def _write_triton(stage: Path, job) -> None:
    from edgekd.export.triton import write_repository

    b = job.deploy["bundles"]["triton"] = write_repository(
        stage, spec=job.spec, name=job.name, max_batch=job.req.max_batch, input_name=job.info.input_name,
        output_name=job.info.output_names[0])
    job.rep.done(f"{FILES['triton']}/: models {', '.join(b['models'])} - run: {b['run']}")
    stream = next((a for a in job.artifacts if a.get("streaming") and a["precision"] == "fp32"), None)
    if stream is not None:
        from edgekd.export.streaming import triton_stream_model

        b["stream"] = triton_stream_model(stage, spec=job.spec, name=job.name, iface=stream["interface"],
                                          max_batch=job.req.max_batch)
        job.rep.done(f"{FILES['triton']}/: {b['stream']['model']} with sequence batching and implicit state")


# ----------------------------------------------------------------------------- rules

def _check_stream(job) -> None:
    from edgekd.export.streaming import check_streamable

    check_streamable(job.model, job.name)  # an offline-shift student cannot stream


def _check_build(job) -> None:
    job.build_request(job.out_dir)  # profile, DLA core, batch range: make_request validates them


def _check_tensorrt(req) -> None:
    if req.engine_precision == "int8" and not req.implicit_int8 and "int8" not in req.formats:
        raise ConfigError(f"an INT8 engine compiles {FILES['int8']}, which --no-quantize turns off",
                          "drop --no-quantize (or add --trt-implicit-int8 for a TensorRT 8.x calibrated engine)")


FORMATS: dict[str, Format] = {f.name: f for f in (  # what each writes: the module docstring
    Format("onnx", ("onnx",)),
    Format("int8", ("int8",), write=_write_int8),
    Format("int8-cpu", ("int8-cpu",), needs=("int8",), options=("cpu_int8",), write=_write_cpu_int8),
    Format("fp16", ("fp16",), write=_write_fp16),
    Format("stream", ("stream", "stream-fp16", "stream-int8"), write=_write_stream, check_job=_check_stream),
    Format("tensorrt", ("build-manifest", "build-script", "calib-clips"),
           options=("precision", "dla", "fp16_layers", "implicit_int8"),
           write=_write_tensorrt, check=_check_tensorrt, check_job=_check_build),
    Format("deepstream", ("deepstream",), options=("precision",), write=_write_deepstream),
    Format("triton", ("triton",), write=_write_triton),
)}
DEFAULT_FORMATS = ("onnx", "int8", "int8-cpu", "fp16")

# An option no chosen format uses is a mistake in the command: (message, hint) per option.
_UNUSED = {
    "precision": ("--fp16/--int8 choose the TensorRT / DeepStream engine precision",
                  f"add --trt or --deepstream ({ONNX_NAMES['int8']} and {ONNX_NAMES['fp16']} are written anyway)"),
    "dla": ("--dla/--fp16-layers shape the TensorRT engine", "add --trt"),
    "fp16_layers": ("--dla/--fp16-layers shape the TensorRT engine", "add --trt"),
    "implicit_int8": ("--trt-implicit-int8 is a TensorRT engine build", "add --trt"),
}


def parse_formats(text: str | None) -> tuple[str, ...]:
    """`--format onnx,int8,tensorrt` -> the formats in table order (onnx always included)."""
    from edgekd.registry import did_you_mean

    names = [s.strip() for s in (text or "").split(",") if s.strip()]
    for n in names:
        if n not in FORMATS:
            raise ConfigError(f"--format: unknown format {n!r} (known: {', '.join(FORMATS)})",
                              did_you_mean(n, list(FORMATS)))
    return tuple(f for f in FORMATS if f == "onnx" or f in names)


def formats_from_flags(formats: tuple[str, ...] | str | None = None, *, int8: bool | None = None,
                       fp16_onnx: bool | None = None, trt: bool = False, deepstream: bool = False,
                       triton: bool = False, streaming: bool = False, cpu_int8: str = "auto") -> tuple[str, ...]:
    """The formats a request asks for: `formats` (default DEFAULT_FORMATS) edited by the old flags.

    --no-quantize / int8=False drops int8 (and int8-cpu), --no-fp16-onnx drops fp16, --cpu-int8 never
    drops int8-cpu; --trt, --deepstream, --triton, --streaming add their format."""
    chosen = set(parse_formats(formats) if isinstance(formats, str) else formats or DEFAULT_FORMATS)
    drop = {"int8", "int8-cpu"} if int8 is False else set()
    drop |= {"fp16"} if fp16_onnx is False else set()
    drop |= {"int8-cpu"} if cpu_int8 == "never" else set()
    add = {name for name, on in (("tensorrt", trt), ("deepstream", deepstream), ("triton", triton),
                                 ("stream", streaming)) if on}
    return tuple(f for f in FORMATS if f == "onnx" or (f in chosen | add and f not in drop))


def engine_precision(fp16: bool, int8: bool) -> str | None:
    """--fp16 / --int8: the engine precision the command names (None: not named, FP16 by default)."""
    if fp16 and int8:
        raise ConfigError("--fp16 and --int8 both given", "pick one TensorRT precision")
    return "int8" if int8 else "fp16" if fp16 else None


def check_request(req, *, check_only: bool = False) -> None:
    """Every flag-combination rule, before any work. check_only: `--check-trt` (no export, a graph check
    that takes the TensorRT precision and shape options)."""
    if req.cpu_int8 not in ("auto", "always", "never"):
        raise ConfigError(f"--cpu-int8 must be auto, always or never, not {req.cpu_int8!r}")
    if req.max_batch < 1:
        raise ConfigError("--max-batch must be at least 1")
    if req.parity_clips < 2:
        raise ConfigError("parity needs at least 2 clips (their logits must vary)", "pass --parity-clips 8 or more")
    given = {"precision": req.precision is not None, "dla": req.dla, "fp16_layers": bool(req.fp16_layers),
             "implicit_int8": req.implicit_int8}
    used = {o for f in req.formats for o in FORMATS[f].options}
    used |= {"precision", "dla", "fp16_layers"} if check_only else set()
    for option, on in given.items():
        if on and option not in used:
            raise ConfigError(*_UNUSED[option])
    if req.implicit_int8 and req.precision != "int8":
        raise ConfigError("--trt-implicit-int8 is an INT8 engine", "add --int8")
    for f in req.formats:
        fmt = FORMATS[f]
        if missing := [n for n in fmt.needs if n not in req.formats]:
            raise ConfigError(f"format {f} needs {', '.join(missing)}", f"add {','.join(missing)} to --format")
        if fmt.check is not None:
            fmt.check(req)
