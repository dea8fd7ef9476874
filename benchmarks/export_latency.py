"""CPU latency of each student: PyTorch eager vs ONNX Runtime FP32 vs the ONNX Runtime INT8 variants.

Per student (tiny3d, r3d_18, x3d_xs, mobilenet_v3_small_tsm at the embedded synthetic dataset's
clip, 8 x 64 x 64), batch 1, the same thread count everywhere, the same real clip:

    eager           PyTorch eager FP32
    fp32            ORT FP32, all graph optimizations
    trt-qdq s8s8    the TensorRT-rules Q/DQ file (int8 symmetric, per-channel) that export writes
    qdq u8s8 pc     QDQ, uint8 activations, int8 per-channel 7-bit weights (the CPU variant)
    qdq u8s8 pt     the same, per-tensor weights
    qop u8s8 pc     QOperator format (QLinearConv nodes in the file), per-channel
    qdq u8u8 pt     uint8 activations and weights, per-tensor
    <best> basic    the fastest INT8 variant again with only basic graph optimizations (no Q/DQ fusion)

INT8 files are calibrated on real clips (minmax). Rounds interleave the runtimes (a busy machine
slows all alike); medians over all calls; ratios are from this one run. Then ORT's profiler on the
TSM student (FP32 and the fastest INT8) lists the kernels that ran and their share of the time,
which says why INT8 does or does not pay on this CPU.

    python benchmarks/export_latency.py [--students tiny3d,...] [--iterations 30] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

STUDENTS = ("tiny3d", "r3d_18", "x3d_xs", "mobilenet_v3_small_tsm")


def variants(fp32: Path, out: Path, calib: np.ndarray) -> dict[str, Path]:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgekd.export.ort_quantize import quiet_quantizer
    from edgekd.export.qdq import quantize_qdq

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(calib):
                return None
            self.i += 4
            return {"video": calib[self.i - 4:self.i]}

    prep = out / "prep.onnx"
    quant_pre_process(str(fp32), str(prep), skip_symbolic_shape=True)
    files = {"trt-qdq s8s8": out / "trt.onnx"}
    quantize_qdq(fp32, files["trt-qdq s8s8"], calib)
    specs = {"qdq u8s8 pc": (QuantFormat.QDQ, QuantType.QInt8, True),
             "qdq u8s8 pt": (QuantFormat.QDQ, QuantType.QInt8, False),
             "qop u8s8 pc": (QuantFormat.QOperator, QuantType.QInt8, True),
             "qdq u8u8 pt": (QuantFormat.QDQ, QuantType.QUInt8, False)}
    for name, (fmt, wtype, pc) in specs.items():
        files[name] = out / (name.replace(" ", "_") + ".onnx")
        with quiet_quantizer():
            quantize_static(str(prep), str(files[name]), Reader(), quant_format=fmt, per_channel=pc,
                            reduce_range=True, activation_type=QuantType.QUInt8, weight_type=wtype,
                            extra_options={"WeightSymmetric": wtype == QuantType.QInt8})
    return files


def session(path: Path, threads: int, level: str = "all", profile: str | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                     "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}[level]
    opts.log_severity_level = 3
    if profile:
        opts.enable_profiling, opts.profile_file_prefix = True, profile
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def timed(fns: dict, x, iterations: int, rounds: int, warmup: int = 3) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            for _ in range(max(1, iterations // rounds)):
                t0 = time.perf_counter()
                fn()
                samples[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) * 1e3 for k, v in samples.items()}


def kernel_profile(path: Path, x, threads: int, calls: int = 10) -> list[tuple[str, float]]:
    """(op type, share of node time) from ORT's profiler, largest first."""
    with tempfile.TemporaryDirectory() as tmp:
        s = session(path, threads, profile=str(Path(tmp) / "p"))
        for _ in range(calls):
            s.run(None, {"video": x})
        events = json.loads(Path(s.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + e.get("dur", 0)
    total = sum(by_op.values()) or 1.0
    return sorted(((k, v / total) for k, v in by_op.items()), key=lambda kv: -kv[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", default=",".join(STUDENTS))
    ap.add_argument("--iterations", type=int, default=30, help="timed calls per runtime (split over rounds)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile-student", default="mobilenet_v3_small_tsm")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.data.synthetic import default_dataset
    from edgekd.export.onnx_export import export_onnx
    from edgekd.runtime.evalset import build_evalset
    from edgekd.students import build_student

    torch.set_num_threads(args.threads)
    spec = default_data_spec(Manifest.load(default_dataset()))
    calib = build_evalset(None, spec, split="train", limit=16).x
    x = build_evalset(None, spec, split="test", limit=1).x[:1]
    xt = torch.from_numpy(x)
    load0 = os.getloadavg()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load0[0]:.1f} "
          f"{load0[1]:.1f} {load0[2]:.1f}; torch {torch.__version__}, onnxruntime {ort.__version__}; "
          f"clip {tuple(x.shape)}, {args.threads} thread(s), {args.iterations} calls each in {args.rounds} rounds")
    results = {}
    with tempfile.TemporaryDirectory(prefix="edgekd-latency-") as tmp:
        for name in args.students.split(","):
            d = Path(tmp) / name
            d.mkdir()
            torch.manual_seed(0)
            model = build_student(name, num_classes=spec.num_classes, frames=spec.frames, size=spec.size).eval()
            export_onnx(model, spec, d / "student.onnx", student_name=name)
            files = {"fp32": d / "student.onnx", **variants(d / "student.onnx", d, calib)}
            sessions = {k: session(p, args.threads) for k, p in files.items()}

            def eager():
                with torch.inference_mode():
                    model(xt)

            fns = {"eager": eager, **{k: (lambda s=s: s.run(None, {"video": x})) for k, s in sessions.items()}}
            ms = timed(fns, x, args.iterations, args.rounds)
            best = min((k for k in ms if k not in ("eager", "fp32")), key=ms.get)
            basic = session(files[best], args.threads, "basic")
            ms[f"{best} basic"] = timed({"b": lambda: basic.run(None, {"video": x})}, x, args.iterations, args.rounds)["b"]
            results[name] = (ms, best, files)
            line = ", ".join(f"{k} {v:.2f}" for k, v in ms.items())
            print(f"{name}: ms {line}")
            print(f"  ORT FP32 / eager speed-up {ms['eager'] / ms['fp32']:.2f}x (target >= 2x); best INT8 ({best}) "
                  f"/ ORT FP32 speed-up {ms['fp32'] / ms[best]:.2f}x (target >= 1.3x); TensorRT-rules file "
                  f"{ms['fp32'] / ms['trt-qdq s8s8']:.2f}x")
        if args.profile_student in results:
            ms, best, files = results[args.profile_student]
            for label, path in (("fp32", files["fp32"]), (best, files[best])):
                top = kernel_profile(path, x, args.threads)[:6]
                print(f"# ORT kernels, {args.profile_student} {label}: " +
                      ", ".join(f"{op} {100 * share:.0f}%" for op, share in top))
    load1 = os.getloadavg()
    print(f"# load average after: {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}")


if __name__ == "__main__":
    main()
