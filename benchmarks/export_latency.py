"""Batch-1 latency of the default student: PyTorch eager vs ONNX Runtime FP32 vs ONNX Runtime INT8.

The student is tiny3d at the embedded synthetic dataset's clip (8 x 64 x 64, 12 classes), exported
by `edgekd.export.api.export_run` exactly as `edgekd export` does it (INT8 calibrated on real clips
of the synthetic dataset, parity checked). Or pass --run to time an existing run's export.

All three runtimes use the same thread count and the same real clip. Rounds interleave the
runtimes (a busy machine slows all of them alike); every call is timed on its own after a warm-up;
the median over all calls is reported, with p10/p90, and the ratios are from this one run.

    python benchmarks/export_latency.py [--iterations 300] [--rounds 5] [--threads 1] [--run runs/NAME]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def default_run(root: Path) -> Path:
    """A tiny3d checkpoint at the synthetic default spec (weights do not change latency)."""
    import torch

    from edgekd.checkpoint import save_checkpoint
    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.data.synthetic import default_dataset
    from edgekd.students import DEFAULT_STUDENT, build_student

    manifest = default_dataset()
    spec = default_data_spec(Manifest.load(manifest))
    torch.manual_seed(0)
    model = build_student(DEFAULT_STUDENT, num_classes=spec.num_classes, frames=spec.frames, size=spec.size)
    run = root / "runs" / "latency"
    save_checkpoint(run / "checkpoint.pt", student_name=DEFAULT_STUDENT, student_kwargs=model.config,
                    state_dict=model.state_dict(), data_spec=spec, config={"data": {"path": str(manifest)}},
                    metrics={})
    return run


def time_calls(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=300, help="timed calls per runtime (split over rounds)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads for torch and ONNX Runtime alike")
    ap.add_argument("--run", type=Path, default=None, help="an exported run (default: build tiny3d and export it)")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch
    from rich.console import Console
    from rich.table import Table

    from edgekd.export.api import export_run, load_student
    from edgekd.runtime.evalset import build_evalset

    console = Console()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="edgekd-latency-") as tmp:
        run = args.run or default_run(Path(tmp))
        export = run / "export"
        if not (export / "student.int8.onnx").is_file():
            export = export_run(run, out_dir=Path(tmp) / "export")
        ckpt, model, spec = load_student(run / "checkpoint.pt" if run.is_dir() else run)
        data = ((ckpt.get("config") or {}).get("data") or {}).get("path")
        x = build_evalset(data, spec, limit=1, dataset_fallback=True, strict=False).x[:1]  # (1, 3, T, S, S), a real clip

        def session(path: Path):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
            return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

        fp32, int8 = session(export / "student.onnx"), session(export / "student.int8.onnx")
        xt = torch.from_numpy(x)

        def eager():
            with torch.inference_mode():
                model(xt)

        runtimes = {"PyTorch eager FP32": eager,
                    "ONNX Runtime FP32": lambda: fp32.run(None, {"video": x}),
                    "ONNX Runtime INT8": lambda: int8.run(None, {"video": x})}
        for fn in runtimes.values():
            time_calls(fn, args.warmup)
        samples: dict[str, list[float]] = {k: [] for k in runtimes}
        per_round = max(1, args.iterations // args.rounds)
        for _ in range(args.rounds):
            for name, fn in runtimes.items():
                samples[name] += time_calls(fn, per_round)

        base = float(np.median(samples["PyTorch eager FP32"]))
        t = Table(title=f"{ckpt['student']['name']} {tuple(x.shape)} batch 1, {args.threads} thread(s), "
                        f"{per_round * args.rounds} calls each, {args.rounds} interleaved rounds", title_justify="left")
        for col in ("runtime", "median ms", "p10 ms", "p90 ms", "speed-up vs PyTorch eager"):
            t.add_column(col, justify="left" if col == "runtime" else "right")
        for name, s in samples.items():
            med = float(np.median(s))
            t.add_row(name, f"{1e3 * med:.3f}", f"{1e3 * np.percentile(s, 10):.3f}", f"{1e3 * np.percentile(s, 90):.3f}",
                      f"{base / med:.2f}x")
        console.print(t)
        f32, i8 = float(np.median(samples["ONNX Runtime FP32"])), float(np.median(samples["ONNX Runtime INT8"]))
        console.print(f"ratios: ORT FP32 / PyTorch = {f32 / base:.3f}, ORT INT8 / PyTorch = {i8 / base:.3f}, "
                      f"ORT INT8 / ORT FP32 = {i8 / f32:.3f}")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        console.print(f"[dim]{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}; "
                      f"torch {torch.__version__}, onnxruntime {ort.__version__}; sizes: "
                      f"{(export / 'student.onnx').stat().st_size / 1e6:.2f} MB FP32, "
                      f"{(export / 'student.int8.onnx').stat().st_size / 1e6:.2f} MB INT8[/dim]")


if __name__ == "__main__":
    main()
