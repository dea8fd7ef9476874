"""TensorRT engines: built with the Python API where TensorRT is importable, else a build manifest.

An engine is specific to the GPU (compute capability, SM count) and the exact TensorRT version that
built it, so the honest artifact for a machine without TensorRT is a recipe, not an engine:

    build_manifest.json   what to build: ONNX, shapes, precision, workspace, DLA, target versions
    build_engine.sh       `bash build_engine.sh` on the target = the exact trtexec command line

INT8 is explicit quantization: the engine is compiled from student.int8.onnx, the Q/DQ graph that
edgekd.export.qdq wrote by TensorRT's rules and whose accuracy the export measured on CPU - the
builder needs --int8 and no calibrator. Implicit calibration (TensorRT 8.x only; TensorRT 10
deprecates the calibrators) stays as a labelled fallback, `implicit_int8=True`: the FP32 ONNX plus
calib_clips.npy (real dataset clips); trtexec cannot calibrate from clips, so the script first runs
`python3 -m edgekd.export.tensorrt build_manifest.json --calibrate-only` (IInt8EntropyCalibrator2
fed by calib_clips.npy) to write calib.cache. That engine is NOT the model measured on CPU.

Where TensorRT is importable (a GPU machine), edgekd.runtime.tensorrt.build_engine does the same with the Python API:
optimization profile over the batch range, workspace pool from the hardware profile, a timing cache
file reused across builds, INT8 entropy calibration with a calibration cache, optional layers pinned
to FP16 (OBEY_PRECISION_CONSTRAINTS), DLA with GPU fallback; edgekd.runtime.runners.TensorRTRunner runs it
for the parity check.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ExportError
from edgekd.runtime.artifact import FILES, engine_file
from edgekd.runtime.tensorrt import (AUTO_FP16, PORTABILITY, TRT_PRECISIONS, BuildRequest,  # noqa: F401
                                     batch_range, build_engine, fp16_node_names, tensorrt_status)



def make_request(root: Path, *, onnx: str, precision: str, input_name: str, input_dims, profile=None,
                 dla: bool = False, dla_core: int = 0, fp16_layers: tuple[str, ...] = (),
                 workspace_mb: int | None = None, fixed_batch: int | None = None,
                 implicit_int8: bool = False) -> BuildRequest:
    """A BuildRequest for `profile` (a bench Profile or None = generic GPU), validated.

    fixed_batch: the ONNX model's batch when it is static (then min = opt = max = that).
    implicit_int8: TensorRT 8.x fallback - calibrate `onnx` (FP32) on the target instead of
    compiling a Q/DQ ONNX."""
    if precision not in TRT_PRECISIONS:
        raise ConfigError(f"unknown TensorRT precision {precision!r}", "use --fp16 or --int8 (or fp32)")
    if profile is not None and not profile.tensorrt_version:
        raise ConfigError(f"profile {profile.name!r} ({profile.device}) has no TensorRT",
                          "pick a GPU or Jetson profile for --trt, e.g. --profile orin-nano-8gb-15w")
    if dla:
        cores = profile.dla_cores if profile is not None else 0
        if cores <= 0:
            raise ConfigError(f"profile {getattr(profile, 'name', '(none)')!r} has no DLA cores",
                              "drop --dla, or pick a profile with dla_cores > 0 (e.g. agx-orin-64gb)")
        if not 0 <= dla_core < cores:
            raise ConfigError(f"DLA core {dla_core} does not exist on {profile.name} (it has {cores})",
                              f"use --dla-core 0..{cores - 1}")
        if precision == "fp32":
            raise ConfigError("DLA runs FP16 or INT8 only", "use --fp16 or --int8 with --dla")
    if fp16_layers and precision != "int8":
        raise ConfigError("--fp16-layers only applies to INT8 engines", "add --int8, or drop --fp16-layers")
    if workspace_mb is None:
        workspace_mb = profile.workspace_mb if profile is not None and profile.workspace_mb > 0 else 1024
    if implicit_int8 and precision != "int8":
        raise ConfigError("implicit INT8 calibration only applies to INT8 engines", "add --int8")
    return BuildRequest(
        root=Path(root), onnx=onnx, engine=engine_file(onnx, precision, dla),
        precision=precision, input_name=input_name, input_dims=tuple(int(d) for d in input_dims),
        batch=(fixed_batch,) * 3 if fixed_batch else batch_range(getattr(profile, "batch_sizes", None), dla),
        workspace_mb=int(workspace_mb),
        dla_core=dla_core if dla else None, fp16_layers=tuple(fp16_layers),
        calib_clips=FILES["calib-clips"] if implicit_int8 else None,
        calib_cache=FILES["calib-cache"] if implicit_int8 else None)


# -- the layers to keep in FP16 ------------------------------------------------------------------


# -- trtexec and the build manifest --------------------------------------------------------------


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def trtexec_argv(req: BuildRequest, fp16_nodes: list[str] | None = None) -> list[str]:
    """The trtexec command line equivalent to `build_engine(req)`; paths relative to the export folder."""
    lo, opt, hi = req.batch
    argv = ["trtexec", f"--onnx={req.onnx}", f"--saveEngine={req.engine}",
            f"--minShapes={req.input_name}:{_dims(req.shape(lo))}",
            f"--optShapes={req.input_name}:{_dims(req.shape(opt))}",
            f"--maxShapes={req.input_name}:{_dims(req.shape(hi))}",
            f"--memPoolSize=workspace:{req.workspace_mb}", f"--timingCacheFile={req.timing_cache}"]
    if req.precision in ("fp16", "int8"):
        argv.append("--fp16")  # INT8 engines keep FP16 for layers without an INT8 kernel
    if req.precision == "int8":
        argv.append("--int8")  # explicit: the Q/DQ nodes carry the scales
        if req.calib_cache:  # implicit fallback (TensorRT 8.x)
            argv.append(f"--calib={req.calib_cache}")
        if fp16_nodes:
            argv += ["--precisionConstraints=obey",
                     "--layerPrecisions=" + ",".join(f"{n}:fp16" for n in fp16_nodes)]
    if req.dla_core is not None:
        argv += [f"--useDLACore={req.dla_core}", "--allowGPUFallback"]
    return argv


def _script(req: BuildRequest, argv: list[str], target: str) -> str:
    lines = ["#!/usr/bin/env bash",
             f"# Build {req.engine} on the target ({target}) in one command: bash {FILES['build-script']}",
             "# " + PORTABILITY,
             "set -euo pipefail",
             'cd "$(dirname "$0")"',
             'TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"']
    if req.precision == "int8" and req.calib_cache:
        lines += ["# Implicit INT8 calibration: fallback for TensorRT 8.x (TensorRT 10 deprecates calibrators).",
                  "# This engine is calibrated here and is NOT the Q/DQ model whose accuracy the export measured.",
                  f"if [ ! -f {shlex.quote(req.calib_cache)} ]; then",
                  "  # trtexec reads a calibration cache but cannot calibrate from clips: do it once with",
                  f"  # TensorRT's entropy calibrator over the dataset clips in {req.calib_clips} (needs edgekd + torch).",
                  f"  python3 -m edgekd.export.tensorrt {FILES['build-manifest']} --calibrate-only",
                  "fi"]
    lines.append('"$TRTEXEC" ' + " ".join(shlex.quote(a) for a in argv[1:]))
    return "\n".join(lines) + "\n"


def write_build_manifest(req: BuildRequest, *, profile=None, calib: np.ndarray | None = None,
                         calib_source: dict[str, Any] | None = None, onnx_sha256: str = "",
                         reason: str = "", built_here: bool = False) -> dict[str, Any]:
    """Write build_manifest.json + build_engine.sh (+ calib_clips.npy) into `req.root`."""
    from edgekd.io import write_json, write_text_atomic

    fp16_nodes = fp16_node_names(req.path(req.onnx), req.fp16_layers) if req.fp16_layers else []
    argv = trtexec_argv(req, fp16_nodes)
    if req.calib_clips:
        if calib is None or len(calib) == 0:
            raise ExportError("an implicit-INT8 build manifest needs calibration clips", "the dataset yielded no clips")
        # float16 halves the file; normalized clips (|x| < ~3) lose nothing a range estimate notices
        np.save(req.path(req.calib_clips), np.ascontiguousarray(calib, dtype=np.float16))
    target = {"profile": getattr(profile, "name", None), "device": getattr(profile, "device", "unspecified GPU"),
              "kind": getattr(profile, "kind", None), "tensorrt": getattr(profile, "tensorrt_version", None),
              "jetpack": getattr(profile, "jetpack", None), "dla_cores": getattr(profile, "dla_cores", 0)}
    manifest = {
        "format": "edgekd-tensorrt-build-manifest",
        "version": 1,
        "onnx": req.onnx,
        "onnx_sha256": onnx_sha256,
        "engine": req.engine,
        "precision": req.precision,
        "input": {"name": req.input_name, "min": list(req.shape(req.batch[0])), "opt": list(req.shape(req.batch[1])),
                  "max": list(req.shape(req.batch[2]))},
        "workspace_mb": req.workspace_mb,
        "dla_core": req.dla_core,
        "fp16_layers": {"patterns": list(req.fp16_layers), "nodes": fp16_nodes},
        "quantization": None if req.precision != "int8" else (
            {"mode": "explicit", "qdq_onnx": req.onnx, "calibrator": None} if not req.calib_clips else
            {"mode": "implicit (TensorRT 8.x fallback)", "calibrator": "IInt8EntropyCalibrator2"}),
        "calibration": None if not req.calib_clips else {
            "algorithm": "IInt8EntropyCalibrator2", "clips": req.calib_clips, "cache": req.calib_cache,
            "shape": list(calib.shape), "dtype": "float16 on disk, fed as float32", "source": calib_source or {}},
        "timing_cache": req.timing_cache,
        "trtexec": {"argv": argv, "command": shlex.join(argv)},
        "script": FILES["build-script"],
        "target": target,
        "portability": PORTABILITY,
        "built_here": built_here,
        "reason_not_built_here": reason or None,
        "request": req.to_dict(),
    }
    write_json(req.root / FILES["build-manifest"], manifest)
    script = req.root / FILES["build-script"]
    write_text_atomic(script, _script(req, argv, f"{target['device']}, TensorRT {target['tensorrt'] or 'any'}"))
    script.chmod(0o755)
    return manifest


# -- the real build (TensorRT importable) --------------------------------------------------------


# -- on the target: python -m edgekd.export.tensorrt build_manifest.json -------------------------


def request_from_manifest(path: Path) -> BuildRequest:
    m = json.loads(Path(path).read_text())
    if m.get("format") != "edgekd-tensorrt-build-manifest":
        raise ConfigError(f"{path} is not an edgekd TensorRT build manifest", f"pass the {FILES['build-manifest']} from an export")
    r = m["request"]
    return BuildRequest(root=Path(path).resolve().parent, onnx=r["onnx"], engine=r["engine"], precision=r["precision"],
                        input_name=r["input_name"], input_dims=tuple(r["input_dims"]), batch=tuple(r["batch"]),
                        workspace_mb=r["workspace_mb"], dla_core=r["dla_core"], fp16_layers=tuple(r["fp16_layers"]),
                        calib_clips=r["calib_clips"], calib_cache=r["calib_cache"], timing_cache=r["timing_cache"])


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m edgekd.export.tensorrt",
                                 description="Build (or only INT8-calibrate) the engine a build manifest describes.")
    ap.add_argument("manifest", type=Path)
    ap.add_argument("--calibrate-only", action="store_true", help="write the calibration cache, not the engine")
    args = ap.parse_args(argv)
    req = request_from_manifest(args.manifest)
    clips = req.path(req.calib_clips) if req.calib_clips else None
    calib = np.load(clips).astype(np.float32) if clips is not None and clips.is_file() else None
    meta = build_engine(req, calib, timing_cache=req.path(req.timing_cache), write_engine=not args.calibrate_only)
    done = req.path(req.calib_cache) if args.calibrate_only else req.path(req.engine)
    print(f"wrote {done} ({meta['tensorrt']}, {meta['gpu']}, {meta['build_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
