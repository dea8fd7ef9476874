"""Per-frame latency of the streaming ONNX vs per-clip latency of the clip ONNX divided by the stride.

mobilenet_v3_small_tsm with the online shift at its reference size (8 x 160 x 160, the size its
docstring counts; 101 classes), exported both ways from one set of weights (weights do not change
latency): student.onnx takes a clip, student.stream.onnx one frame plus its state. A clip model
that answers every `stride` frames spends clip_ms / stride per frame; the stream answers every
frame for frame_ms. The ratio frame_ms / (clip_ms / stride) is what streaming costs per frame
(about 1 when the same frames go through the same layers; < 1 also when the clip overlaps the
last one). Both run in ONNX Runtime CPU with the same threads on the same real decoded frames;
rounds interleave the two; the median of all calls counts. Besides wall time, each call's CPU time
of the calling thread is recorded (with one intra-op thread ONNX Runtime computes on the caller's
thread): on a shared, overloaded machine a 2 ms call often runs uninterrupted while a 200 ms call
never does, so wall-time ratios there mix compute with waiting; CPU-time ratios do not.

    python benchmarks/streaming.py [--iterations 200] [--rounds 5] [--threads 1] [--stride 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def time_calls(fn, n: int) -> list[tuple[float, float]]:
    """(wall seconds, this thread's CPU seconds) per call."""
    out = []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        out.append((time.perf_counter() - t0, time.thread_time() - c0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=200, help="timed calls per model (split over rounds)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads for both models")
    ap.add_argument("--stride", type=int, default=8, help="frames between two answers of the clip model")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--frames", type=int, default=8)
    args = ap.parse_args()

    import torch

    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.data.synthetic import default_dataset
    from edgekd.export.onnx_export import export_onnx
    from edgekd.export.streaming import export_stream_onnx
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.runners import OrtRunner
    from edgekd.runtime.stream import StreamRunner
    from edgekd.report import make_console
    from edgekd.students import build_student

    console = make_console()  # lines never wrap: the figures stay on one line in a log
    name = "mobilenet_v3_small_tsm"
    manifest = default_dataset()
    data_spec = dataclasses.replace(default_data_spec(Manifest.load(manifest)), frames=args.frames, size=args.size)
    clip = build_evalset(manifest, data_spec, limit=1).x[:1]          # (1, 3, T, S, S): a real decoded clip
    spec = dataclasses.replace(data_spec, class_names=tuple(f"class{i}" for i in range(101)))
    torch.manual_seed(0)
    model = build_student(name, num_classes=101, frames=spec.frames, size=spec.size, shift="online").eval()
    with tempfile.TemporaryDirectory(prefix="edgekd-stream-bench-") as tmp:
        export_onnx(model, spec, Path(tmp) / "student.onnx", student_name=name, simplify=False)
        export_stream_onnx(model, spec, Path(tmp) / "student.stream.onnx", student_name=name, opset=17)
        clip_runner = OrtRunner(Path(tmp) / "student.onnx", "cpu", "fp32", threads=args.threads)
        stream = StreamRunner(Path(tmp) / "student.stream.onnx", "cpu", "fp32", threads=args.threads)
        clip_runner.load()
        stream.load()
        stream.reset(1)
        frames = [clip[:, :, t] for t in range(spec.frames)]
        step = iter(range(1 << 62))
        calls = {"clip ONNX (one clip)": lambda: clip_runner.run(clip),
                 "stream ONNX (one frame)": lambda: stream.step(frames[next(step) % spec.frames])}
        for fn in calls.values():
            time_calls(fn, args.warmup)
        samples: dict[str, list[float]] = {k: [] for k in calls}
        per_round = max(1, args.iterations // args.rounds)
        for _ in range(args.rounds):
            for k, fn in calls.items():
                samples[k] += time_calls(fn, per_round)
    def med(k: str, i: int, q: float = 50) -> float:
        return 1e3 * float(np.percentile([c[i] for c in samples[k]], q))

    for k in calls:
        console.print(f"{k:26s} wall median {med(k, 0):8.3f} ms (p10 {med(k, 0, 10):8.3f}, p90 {med(k, 0, 90):8.3f})  "
                      f"CPU median {med(k, 1):8.3f} ms  ({len(samples[k])} calls)", highlight=False)
    clip_k, frame_k = calls
    for i, what in ((1, "CPU time"), (0, "wall time")):
        clip_ms, frame_ms = med(clip_k, i), med(frame_k, i)
        console.print(f"{what:9s}: {name} {spec.frames}x{spec.size}x{spec.size}, {args.threads} thread(s): per frame "
                      f"{frame_ms:.3f} ms streaming vs clip {clip_ms:.3f} ms / stride {args.stride} = "
                      f"{clip_ms / args.stride:.3f} ms; ratio {frame_ms / (clip_ms / args.stride):.3f}; answering "
                      f"every frame, the clip model needs {clip_ms / frame_ms:.1f}x the stream's time", highlight=False)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    console.print(f"[dim]{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
                  f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min); onnxruntime CPU[/dim]")


if __name__ == "__main__":
    main()
