"""How good is the per-layer latency estimate? Predicted vs measured on this host, every student.

For each registered student (random weights; latency does not depend on them) at 8 frames x 64 px:
export to ONNX, measure ONNX Runtime CPU FP32 p50 at batch 1 and 8 (warm-up, then timed calls), and
predict the same with edgekd.bench.predictor on the "host" profile (peaks measured by the
micro-benchmarks in this run). Prints one table and the ratio measured / per-layer floor; its min,
median and max are the predictor's RATIO (estimate = floor x median, band = floor x [min, max]).

    python benchmarks/predictor_error.py [--frames 8] [--size 64] [--iterations 10]

Run it with nothing else of yours running: a busy machine inflates the measured side.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--batches", default="1,8")
    args = ap.parse_args()

    import torch

    from edgekd.bench.latency import summarize, time_calls
    from edgekd.bench.predictor import RATIO, predict_model
    from edgekd.data.spec import DataSpec
    from edgekd.export.onnx_export import export_onnx
    from edgekd.runtime.host import collect, host_profile
    from edgekd.runtime.runners import OrtRunner
    from edgekd.students import STUDENTS, build_student

    env = collect()
    prof = host_profile(env)
    print(f"host: {env['cpu']} ({env['cpu_count']} cores, {', '.join(env['isa'])}); measured peaks fp32 "
          f"{prof.peak_tflops['fp32'] * 1e3:.1f} GFLOP/s, bandwidth {prof.bandwidth_gbs:.1f} GB/s, "
          f"per-operator {prof.kernel_launch_us:.2f} us")
    spec = DataSpec(frames=args.frames, size=args.size, class_names=tuple(f"c{i}" for i in range(10)))
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgekd-pred-") as tmp:
        for name in STUDENTS.names():
            torch.manual_seed(0)
            model = build_student(name, num_classes=10, frames=args.frames, size=args.size).eval()
            path = Path(tmp) / f"{name}.onnx"
            export_onnx(model, spec, path, student_name=name, simplify=False)
            with OrtRunner(path, "cpu", "fp32") as runner:
                for b in batches:
                    x = np.random.default_rng(0).standard_normal((b, *spec.input_shape(1)[1:]), dtype=np.float32)
                    n = max(3, args.iterations // b)
                    measured = summarize(time_calls(runner, x, warmup=2, iterations=n), b).p50_ms
                    est = predict_model(model, spec.input_shape(b), prof, "fp32")
                    rows.append((name, b, measured, est))
                    print(f"  {name:24s} b{b}: measured {measured:9.2f} ms  floor {est.floor_ms:9.2f} ms  "
                          f"ratio {measured / est.floor_ms:5.2f}", flush=True)

    print("\n| student | batch | measured p50 ms | floor ms | measured / floor | compute / memory / launch ms |")
    print("|---|---|---|---|---|---|")
    for name, b, m, e in rows:
        print(f"| {name} | {b} | {m:.2f} | {e.floor_ms:.2f} | {m / e.floor_ms:.2f} | "
              f"{e.compute_ms:.2f} / {e.memory_ms:.2f} / {e.launch_ms:.3f} |")
    ratios = np.array([m / e.floor_ms for _, _, m, e in rows])
    err = np.abs(np.log(ratios))
    print(f"\nratio measured / floor: min {ratios.min():.2f}, median {np.median(ratios):.2f}, "
          f"max {ratios.max():.2f}; median |log error| {np.median(err):.2f} "
          f"(x{np.exp(np.median(err)):.2f}); RATIO in edgekd.bench.predictor: {RATIO}")
    inside = ((ratios >= RATIO[0]) & (ratios <= RATIO[2])).mean()
    print(f"cases inside the band: {100 * inside:.0f}%")


if __name__ == "__main__":
    main()
