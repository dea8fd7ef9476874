"""Building TensorRT engines with the Python API: the one builder export and the runners share.

`build_engine(BuildRequest)`: optimization profile over the batch range, workspace pool, a timing
cache file reused across builds, INT8 entropy calibration with a calibration cache (implicit
calibration, kept as the TensorRT 8.x path), optional layers pinned to FP16
(OBEY_PRECISION_CONSTRAINTS), DLA with GPU fallback. Running an engine is
edgekd.runtime.runners.TensorRTRunner. tensorrt is imported inside the functions.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ExportError
from edgekd.runtime.artifact import FILES

PORTABILITY = ("TensorRT engines are not portable: an engine runs only on the GPU model (compute capability) "
               f"and the exact TensorRT version that built it. Build it on the target with `bash {FILES['build-script']}`.")
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
    onnx: str                              # FILES["onnx"] or FILES["int8"]
    engine: str                            # engine_file(onnx, precision, dla)
    precision: str                         # "fp32" | "fp16" | "int8"
    input_name: str
    input_dims: tuple[int, ...]            # (3, T, S, S): everything but the batch axis
    batch: tuple[int, int, int]            # (min, opt, max)
    workspace_mb: int
    dla_core: int | None = None
    fp16_layers: tuple[str, ...] = ()      # INT8 only: names/globs/layer types kept in FP16
    calib_clips: str | None = None         # FILES["calib-clips"] for implicit INT8
    calib_cache: str | None = None         # FILES["calib-cache"] for implicit INT8
    timing_cache: str = FILES["timing-cache"]

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


def _require_trt():
    trt, reason = tensorrt_status()
    if trt is None:
        raise ExportError(reason, f"run on a machine with TensorRT, or use {FILES['build-script']} from the manifest there")
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

    from edgekd.home import edgekd_home

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
    if req.precision == "int8" and req.calib_cache:  # implicit fallback (TensorRT 8.x); else the Q/DQ scales rule
        cache_path = req.path(req.calib_cache or FILES["calib-cache"])
        if calib is None and not cache_path.is_file():
            raise ExportError("INT8 engine needs calibration clips or a calibration cache",
                              f"put the clips at {req.path(req.calib_clips or FILES['calib-clips'])}")
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
        "quantization": None if req.precision != "int8" else ("implicit" if req.calib_cache else "explicit (Q/DQ)"),
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
