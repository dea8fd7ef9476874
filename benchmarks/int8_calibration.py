"""Which INT8 calibration method to default to: minmax vs entropy vs percentile, measured.

For each student, train it briefly on a synthetic dataset (so its logits mean something), export
student.onnx, write the TensorRT-rules Q/DQ INT8 with each method (edgekd.export.qdq, calibrated
on real train clips) and measure on the test clips with TensorRT's arithmetic (ONNX Runtime,
graph as written): top-1, top-1 agreement with FP32, worst-clip logit cosine. One run, one table.

    python benchmarks/int8_calibration.py [--students tiny3d,x3d_xs] [--steps 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def train(name: str, manifest_path: Path, steps: int, root: Path) -> Path:
    import torch

    from edgekd.checkpoint import save_checkpoint
    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.runtime.evalset import build_evalset
    from edgekd.students import build_student

    spec = default_data_spec(Manifest.load(manifest_path))
    tr = build_evalset(str(manifest_path), spec, split="train")
    x, y = torch.from_numpy(tr.x), torch.from_numpy(tr.labels)
    torch.manual_seed(0)
    model = build_student(name, num_classes=spec.num_classes, frames=spec.frames, size=spec.size)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (16,))
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    run = root / "runs" / name
    save_checkpoint(run / "checkpoint.pt", student_name=name, student_kwargs=model.config,
                    state_dict=model.eval().state_dict(), data_spec=spec, config={"data": {"path": str(manifest_path)}},
                    metrics={"train_loss": float(loss.detach())})
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", default="tiny3d,x3d_xs")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--calib-clips", type=int, default=32)
    args = ap.parse_args()

    import torch

    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.data.synthetic import generate
    from edgekd.export.api import export_run
    from edgekd.export.qdq import METHODS, TRT_EMULATION, QdqSettings, quantize_qdq
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.metrics import agreement, classification
    from edgekd.runtime.runners import OrtRunner, logits

    torch.set_num_threads(1)
    print(f"# load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgekd-calib-") as tmp:
        root = Path(tmp)
        mp = generate(root / "data", classes=8, videos_per_class=16, frames=16, size=32, seed=3, test_fraction=0.25,
                      progress=False, workers=1)
        spec = default_data_spec(Manifest.load(mp))
        calib = build_evalset(str(mp), spec, split="train", limit=args.calib_clips)
        test = build_evalset(str(mp), spec, split="test")
        for name in args.students.split(","):
            t0 = time.perf_counter()
            run = train(name, mp, args.steps, root)
            try:
                out = export_run(run, int8=False, fp16_onnx=False, parity_clips=8)
            except Exception as e:  # noqa: BLE001 - e.g. a student whose brief training collapsed to constant logits
                print(f"# {name}: skipped ({type(e).__name__}: {str(e)[:160]})")
                continue
            with OrtRunner(out / "student.onnx", "cpu", "fp32") as r:
                f32 = logits(r, test.x)
            acc32 = classification(f32, test.labels)["top1"]
            for method in METHODS:
                q = root / f"{name}.{method}.onnx"
                quantize_qdq(out / "student.onnx", q, calib.x, QdqSettings(method=method))
                with OrtRunner(q, "cpu", "int8", graph_optimization=TRT_EMULATION) as r:
                    i8 = logits(r, test.x)
                cos = (f32 * i8).sum(1) / np.linalg.norm(f32, axis=1) / np.linalg.norm(i8, axis=1)
                rows.append((name, method, acc32, classification(i8, test.labels)["top1"], agreement(f32, i8),
                             float(cos.min())))
            print(f"# {name}: trained {args.steps} steps + measured in {time.perf_counter() - t0:.0f} s")
    print(f"{'student':<24} {'method':<11} {'FP32 top1':>9} {'INT8 top1':>9} {'agree':>6} {'cos min':>8}")
    for name, method, a32, a8, agr, cmin in rows:
        print(f"{name:<24} {method:<11} {a32:>9.3f} {a8:>9.3f} {agr:>6.3f} {cmin:>8.4f}")
    print(f"# {len(test)} test clips, {len(calib)} calibration clips; load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
