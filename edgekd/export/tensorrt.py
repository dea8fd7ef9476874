"""TensorRT engines: built with the Python API where TensorRT is importable, else a build manifest.

An engine is specific to the GPU (compute capability, SM count) and the exact TensorRT version that
built it, so the honest artifact for a machine without TensorRT is a recipe, not an engine:

    build_manifest.json   what to build: ONNX, shapes, precision, workspace, DLA, target versions
    build_engine.sh       `bash build_engine.sh` on the target = the exact trtexec command line
    calib_clips.npy       INT8 only: real dataset clips for entropy calibration (N, 3, T, S, S)

trtexec cannot calibrate from clips, only read a calibration cache; for INT8 the script first runs
`python3 -m edgekd.export.tensorrt build_manifest.json --calibrate-only` (this module, with
TensorRT's IInt8EntropyCalibrator2 fed by calib_clips.npy) to write calib.cache when it is missing.

Where TensorRT is importable (a GPU machine), `build_engine` does the same with the Python API:
optimization profile over the batch range, workspace pool from the hardware profile, a timing cache
file reused across builds, INT8 entropy calibration with a calibration cache, optional layers pinned
to FP16 (OBEY_PRECISION_CONSTRAINTS), DLA with GPU fallback; `engine_logits` runs an engine with
torch CUDA tensors as I/O buffers for the parity check.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ExportError

PORTABILITY = ("TensorRT engines are not portable: an engine runs only on the GPU model (compute capability) "
               "and the exact TensorRT version that built it. Build it on the target with `bash build_engine.sh`.")
TRT_PRECISIONS = ("fp32", "fp16", "int8")
AUTO_FP16 = "auto"  # keep-in-FP16 shorthand: first conv, classifier, reductions/softmax/normalizations


def tensorrt_status() -> tuple[Any | None, str]:
    """(tensorrt module or None, one-line reason)."""
    try:
        import tensorrt as trt  # type: ignore[import-not-found]
    except Exception as e:  # noqa: BLE001 - ImportError, or OSError from missing CUDA libraries
        return None, f"TensorRT is not importable here ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return trt, f"TensorRT {trt.__version__}"


@dataclass
class BuildRequest:
    """Everything one engine build needs; paths are relative to `root` (the export folder)."""

    root: Path
    onnx: str                              # "student.onnx"
    engine: str                            # "student.fp16.engine"
    precision: str                         # "fp32" | "fp16" | "int8"
    input_name: str
    input_dims: tuple[int, ...]            # (3, T, S, S): everything but the batch axis
    batch: tuple[int, int, int]            # (min, opt, max)
    workspace_mb: int
    dla_core: int | None = None
    fp16_layers: tuple[str, ...] = ()      # INT8 only: names/globs/layer types kept in FP16
    calib_clips: str | None = None         # "calib_clips.npy"
    calib_cache: str | None = None         # "calib.cache"
    timing_cache: str = "trt_timing.cache"

    def shape(self, b: int) -> tuple[int, ...]:
        return (b, *self.input_dims)

    def path(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("root")
        d["input_dims"], d["batch"], d["fp16_layers"] = list(self.input_dims), list(self.batch), list(self.fp16_layers)
        return d


def batch_range(batch_sizes: tuple[int, ...] | list[int] | None, dla: bool) -> tuple[int, int, int]:
    """(min, opt, max) from a profile's batch sizes. opt = the smallest: edge streams are latency-bound
    (one clip at a time), so tactics are timed at that shape. DLA has no dynamic shapes: min=opt=max."""
    sizes = sorted(set(batch_sizes or [1]))
    lo, hi = sizes[0], sizes[-1]
    return (lo, lo, lo) if dla else (lo, lo, hi)


def make_request(root: Path, *, onnx: str, precision: str, input_name: str, input_dims, profile=None,
                 dla: bool = False, dla_core: int = 0, fp16_layers: tuple[str, ...] = (),
                 workspace_mb: int | None = None, fixed_batch: int | None = None) -> BuildRequest:
    """A BuildRequest for `profile` (a bench Profile or None = generic GPU), validated.

    fixed_batch: the ONNX model's batch when it is static (then min = opt = max = that)."""
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
    stem = Path(onnx).stem
    return BuildRequest(
        root=Path(root), onnx=onnx, engine=f"{stem}.{precision}{'.dla' if dla else ''}.engine",
        precision=precision, input_name=input_name, input_dims=tuple(int(d) for d in input_dims),
        batch=(fixed_batch,) * 3 if fixed_batch else batch_range(getattr(profile, "batch_sizes", None), dla),
        workspace_mb=int(workspace_mb),
        dla_core=dla_core if dla else None, fp16_layers=tuple(fp16_layers),
        calib_clips="calib_clips.npy" if precision == "int8" else None,
        calib_cache="calib.cache" if precision == "int8" else None)


# -- the layers to keep in FP16 ------------------------------------------------------------------


def fp16_node_names(onnx_path: Path, patterns: tuple[str, ...]) -> list[str]:
    """ONNX node names matching `patterns` (the TensorRT ONNX parser names layers after nodes).

    A pattern is a node-name glob, an ONNX op type ("Gemm"), or "auto": the first Conv (raw pixels
    carry fine detail), the classifier Gemm/MatMul, and every reduction/softmax/normalization.
    """
    import onnx

    nodes = [n for n in onnx.load(str(onnx_path), load_external_data=False).graph.node
             if n.op_type not in ("Constant", "Identity", "QuantizeLinear", "DequantizeLinear")]
    chosen: list[str] = []

    def add(n) -> None:
        if n.name and n.name not in chosen:
            chosen.append(n.name)

    for pat in patterns:
        if pat == AUTO_FP16:
            convs = [n for n in nodes if n.op_type == "Conv"]
            heads = [n for n in nodes if n.op_type in ("Gemm", "MatMul")]
            for n in convs[:1] + heads[-1:]:
                add(n)
            for n in nodes:
                if n.op_type.startswith("Reduce") or n.op_type in (
                        "Softmax", "LogSoftmax", "GlobalAveragePool", "LayerNormalization", "InstanceNormalization"):
                    add(n)
            continue
        for n in nodes:
            if n.op_type == pat or fnmatch.fnmatchcase(n.name, pat):
                add(n)
    return chosen


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
        argv += ["--int8", f"--calib={req.calib_cache}"]
        if fp16_nodes:
            argv += ["--precisionConstraints=obey",
                     "--layerPrecisions=" + ",".join(f"{n}:fp16" for n in fp16_nodes)]
    if req.dla_core is not None:
        argv += [f"--useDLACore={req.dla_core}", "--allowGPUFallback"]
    return argv


def _script(req: BuildRequest, argv: list[str], target: str) -> str:
    lines = ["#!/usr/bin/env bash",
             f"# Build {req.engine} on the target ({target}) in one command: bash build_engine.sh",
             "# " + PORTABILITY,
             "set -euo pipefail",
             'cd "$(dirname "$0")"',
             'TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"']
    if req.precision == "int8":
        lines += [f"if [ ! -f {shlex.quote(req.calib_cache)} ]; then",
                  "  # trtexec reads a calibration cache but cannot calibrate from clips: do it once with",
                  "  # TensorRT's entropy calibrator over the dataset clips in calib_clips.npy (needs edgekd + torch).",
                  "  python3 -m edgekd.export.tensorrt build_manifest.json --calibrate-only",
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
    if req.precision == "int8":
        if calib is None or len(calib) == 0:
            raise ExportError("an INT8 build manifest needs calibration clips", "the dataset yielded no clips")
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
        "calibration": None if req.precision != "int8" else {
            "algorithm": "IInt8EntropyCalibrator2", "clips": req.calib_clips, "cache": req.calib_cache,
            "shape": list(calib.shape), "dtype": "float16 on disk, fed as float32", "source": calib_source or {}},
        "timing_cache": req.timing_cache,
        "trtexec": {"argv": argv, "command": shlex.join(argv)},
        "script": "build_engine.sh",
        "target": target,
        "portability": PORTABILITY,
        "built_here": built_here,
        "reason_not_built_here": reason or None,
        "request": req.to_dict(),
    }
    write_json(req.root / "build_manifest.json", manifest)
    script = req.root / "build_engine.sh"
    write_text_atomic(script, _script(req, argv, f"{target['device']}, TensorRT {target['tensorrt'] or 'any'}"))
    script.chmod(0o755)
    return manifest


# -- the real build (TensorRT importable) --------------------------------------------------------


def _require_trt():
    trt, reason = tensorrt_status()
    if trt is None:
        raise ExportError(reason, "run on a machine with TensorRT, or use build_engine.sh from the manifest there")
    return trt


def _make_calibrator(trt, clips: np.ndarray, batch: int, cache: Path):
    """IInt8EntropyCalibrator2 over real clips; device buffer = one torch CUDA tensor, reused."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.i = 0
            self.buf = torch.empty((batch, *clips.shape[1:]), dtype=torch.float32, device="cuda")

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names):  # -> [device pointer] per input, None when the clips run out
            if self.i + batch > len(clips):
                return None
            self.buf.copy_(torch.from_numpy(np.ascontiguousarray(clips[self.i:self.i + batch])))
            torch.cuda.synchronize()
            self.i += batch
            return [int(self.buf.data_ptr())]

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data) -> None:
            cache.write_bytes(bytes(data))

    return EntropyCalibrator()


def default_timing_cache(trt) -> Path:
    """One timing cache per (GPU, TensorRT version) under $EDGEKD_HOME, shared by every export."""
    import torch

    from edgekd.data.synthetic import edgekd_home

    home = edgekd_home()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "nogpu"
    safe = "".join(c if c.isalnum() else "-" for c in gpu).strip("-")
    return home / "tensorrt" / f"timing-{safe}-trt{trt.__version__}.cache"


def build_engine(req: BuildRequest, calib: np.ndarray | None = None, *, timing_cache: Path | None = None,
                 reporter=None, write_engine: bool = True) -> dict[str, Any]:
    """Build `req.engine` with the TensorRT Python API; returns the engine metadata (also written as JSON)."""
    import torch

    trt = _require_trt()
    if not torch.cuda.is_available():
        raise ExportError("TensorRT is importable but no CUDA GPU is visible", "build on the target GPU")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    onnx_path = req.path(req.onnx)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {errors}",
                          "run `edgekd export --check-trt --profile NAME` to see which operator fails")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, req.workspace_mb << 20)
    lo, opt, hi = req.batch
    profile = builder.create_optimization_profile()
    profile.set_shape(req.input_name, req.shape(lo), req.shape(opt), req.shape(hi))
    config.add_optimization_profile(profile)

    timing_path = timing_cache or default_timing_cache(trt)
    timing_path.parent.mkdir(parents=True, exist_ok=True)
    cache = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)

    if req.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    calibrator = None
    if req.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        cache_path = req.path(req.calib_cache or "calib.cache")
        if calib is None and not cache_path.is_file():
            raise ExportError("INT8 engine needs calibration clips or a calibration cache",
                              f"put the clips at {req.path(req.calib_clips or 'calib_clips.npy')}")
        # Calibration runs at the profile's opt shape; batch = opt.
        calibrator = _make_calibrator(trt, calib if calib is not None else np.zeros((0, *req.input_dims), np.float32),
                                      opt, cache_path)
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
    pinned = []
    if req.fp16_layers:
        names = set(fp16_node_names(onnx_path, req.fp16_layers))
        types = {p.upper() for p in req.fp16_layers}
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.name in names or layer.type.name in types or any(
                    fnmatch.fnmatchcase(layer.name, p) for p in req.fp16_layers if p != AUTO_FP16):
                layer.precision = trt.float16
                for j in range(layer.num_outputs):
                    if layer.get_output(j).dtype == trt.float32:
                        layer.set_output_type(j, trt.float16)
                pinned.append(layer.name)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    if req.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = req.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)

    if reporter is not None:
        reporter.step(f"building TensorRT {req.precision} engine (batch {lo}/{opt}/{hi}, "
                      f"workspace {req.workspace_mb} MB{', DLA core %d' % req.dla_core if req.dla_core is not None else ''})")
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - t0
    if serialized is None:
        raise ExportError(f"TensorRT failed to build {req.engine} (see the TensorRT log above)",
                          "try --fp16, a larger workspace, or check --check-trt")
    timing_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    meta = {
        "format": "tensorrt", "engine": req.engine, "precision": req.precision,
        "tensorrt": trt.__version__, "gpu": torch.cuda.get_device_name(0),
        "compute_capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
        "input": {"name": req.input_name, "min": list(req.shape(lo)), "opt": list(req.shape(opt)), "max": list(req.shape(hi))},
        "workspace_mb": req.workspace_mb, "dla_core": req.dla_core, "fp16_layers": pinned,
        "calibration_cache": req.calib_cache if req.precision == "int8" else None,
        "timing_cache": str(timing_path), "build_seconds": round(seconds, 2),
        "bytes": len(serialized), "portability": PORTABILITY,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if write_engine:
        from edgekd.io import atomic_path, write_json

        with atomic_path(req.path(req.engine)) as t:
            t.write_bytes(bytes(serialized))
        write_json(req.path(req.engine + ".json"), meta)
    del calibrator
    return meta


def engine_logits(engine_path: str | Path, x: np.ndarray) -> np.ndarray:
    """Run an engine on (N, 3, T, S, S) clips in chunks its profile accepts; torch CUDA tensors are the buffers."""
    import torch

    trt = _require_trt()
    logger = trt.Logger(trt.Logger.WARNING)
    engine = trt.Runtime(logger).deserialize_cuda_engine(Path(engine_path).read_bytes())
    if engine is None:
        raise ExportError(f"TensorRT cannot load {engine_path}",
                          "the engine was built for another GPU or TensorRT version: " + PORTABILITY)
    ctx = engine.create_execution_context()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inp = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
    out = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
    lo, _, hi = (tuple(s)[0] for s in engine.get_tensor_profile_shape(inp, 0))
    stream = torch.cuda.current_stream()
    results = []
    for i in range(0, len(x), hi):
        chunk = x[i:i + hi]
        n = len(chunk)
        if n < lo:  # a static-batch (DLA) engine: pad the last chunk
            chunk = np.concatenate([chunk, np.zeros((lo - n, *chunk.shape[1:]), chunk.dtype)])
        xb = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).cuda()
        ctx.set_input_shape(inp, tuple(xb.shape))
        yb = torch.empty(tuple(ctx.get_tensor_shape(out)), dtype=torch.float32, device="cuda")
        ctx.set_tensor_address(inp, int(xb.data_ptr()))
        ctx.set_tensor_address(out, int(yb.data_ptr()))
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise ExportError(f"TensorRT execution of {engine_path} failed", "see the TensorRT log above")
        stream.synchronize()
        results.append(yb[:n].cpu().numpy())
    return np.concatenate(results)


# -- on the target: python -m edgekd.export.tensorrt build_manifest.json -------------------------


def request_from_manifest(path: Path) -> BuildRequest:
    m = json.loads(Path(path).read_text())
    if m.get("format") != "edgekd-tensorrt-build-manifest":
        raise ConfigError(f"{path} is not an edgekd TensorRT build manifest", "pass the build_manifest.json from an export")
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
