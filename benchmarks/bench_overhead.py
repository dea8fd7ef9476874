"""The bench harness's own overhead per iteration, against the raw runtime call.

    raw          for _ in range(n): session.run(None, {"video": x})        (bare loop, one clock pair)
    harness      edgekd.bench.latency.time_calls(OrtRunner, x, 0, n)      (what `edgekd bench` times)
    harness+bar  the same with the rich progress bar `edgekd bench` shows, advanced every iteration

Two models: a one-node ONNX graph (the runtime call costs microseconds, so the harness overhead is
as visible as it can be) and the tiny3d student at its default 8 x 64 x 64 input (a real workload).
Rounds alternate raw and harness and the median round is reported, so a busy machine affects both alike.

    python benchmarks/bench_overhead.py [--iterations 2000] [--rounds 5]

Prints per-iteration times and the ratios harness/raw measured in this run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def one_node_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("video", TensorProto.FLOAT, ["batch", 3, 8, 64, 64])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3, 8, 64, 64])
    graph = helper.make_graph([helper.make_node("Identity", ["video"], ["logits"])], "identity", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime we support
    onnx.save(model, str(path))
    return path


def tiny3d_onnx(path: Path) -> Path:
    import edgekd.students  # noqa: F401
    from edgekd.data.spec import DataSpec
    from edgekd.export.onnx_export import export_onnx
    from edgekd.students import build_student

    spec = DataSpec(frames=8, size=64, class_names=tuple(f"c{i}" for i in range(12)))
    model = build_student("tiny3d", num_classes=12, frames=8, size=64).eval()
    return export_onnx(model, spec, path, student_name="tiny3d", simplify=False).path


def raw_loop(sess, x: np.ndarray, n: int) -> float:
    feed = {"video": x}
    run = sess.run
    t0 = time.perf_counter()
    for _ in range(n):
        run(None, feed)
    return (time.perf_counter() - t0) / n


def harness_loop(runner, x: np.ndarray, n: int, bar: bool) -> tuple[float, float]:
    """(wall seconds per iteration, mean per-call seconds the harness reports)."""
    from edgekd.bench.latency import time_calls
    from edgekd.report import Reporter

    t0 = time.perf_counter()
    if bar:
        with Reporter().bar("harness", n, "it") as b:
            times = time_calls(runner, x, 0, n, advance=b.advance)
    else:
        times = time_calls(runner, x, 0, n)
    return (time.perf_counter() - t0) / n, float(np.mean(times))


def measure(name: str, path: Path, iterations: int, rounds: int) -> None:
    from edgekd.runtime.runners import OrtRunner

    runner = OrtRunner(path, "cpu", "fp32", threads=1)
    runner.load()
    sess = runner.session
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 64, 64)).astype(np.float32)
    raw_loop(sess, x, max(10, iterations // 10))  # warm up
    raw, wall, reported, wall_bar = [], [], [], []
    for _ in range(rounds):
        raw.append(raw_loop(sess, x, iterations))
        w, r = harness_loop(runner, x, iterations, bar=False)
        wall.append(w)
        reported.append(r)
        wall_bar.append(harness_loop(runner, x, iterations, bar=True)[0])
    raw_m, wall_m, rep_m, bar_m = (statistics.median(v) for v in (raw, wall, reported, wall_bar))
    us = 1e6
    print(f"\n{name}: {iterations} iterations x {rounds} rounds (median round), batch 1, 1 thread")
    print(f"  raw session.run loop          {raw_m * us:10.2f} us/iter")
    print(f"  harness, time reported        {rep_m * us:10.2f} us/iter   ratio {rep_m / raw_m:6.3f}   "
          f"(+{(rep_m - raw_m) * us:.2f} us)")
    print(f"  harness, wall per iteration   {wall_m * us:10.2f} us/iter   ratio {wall_m / raw_m:6.3f}   "
          f"(+{(wall_m - raw_m) * us:.2f} us)")
    print(f"  harness + progress bar, wall  {bar_m * us:10.2f} us/iter   ratio {bar_m / raw_m:6.3f}   "
          f"(+{(bar_m - raw_m) * us:.2f} us)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    import onnxruntime as ort

    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="edgekd-overhead-") as tmp:
        measure("one-node ONNX (Identity on 1x3x8x64x64)", one_node_onnx(Path(tmp) / "identity.onnx"),
                args.iterations, args.rounds)
        measure("tiny3d student (1x3x8x64x64)", tiny3d_onnx(Path(tmp) / "tiny3d.onnx"),
                max(50, args.iterations // 20), args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
