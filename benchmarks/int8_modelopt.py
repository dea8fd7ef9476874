"""edgekd's TensorRT-rules Q/DQ INT8 next to NVIDIA Model Optimizer's ONNX PTQ, on the same clips.

For each trained run (an `edgekd export` folder holding student.onnx), quantize student.onnx with
edgekd (edgekd.export.qdq, method auto) and with Model Optimizer (`modelopt.onnx.quantization.
quantize`, int8, CPU ONNX Runtime, max and entropy calibration) on the SAME calibration clips (the
export's 32 train clips), then run every file with TensorRT's arithmetic (ONNX Runtime, graph as
written) on ALL test clips: top-1 agreement with FP32, mean and max |Δ logit|, and where the
Q/DQ pairs sit. Model Optimizer is installed without its [onnx] extra (that pins onnxruntime-gpu):
`pip install --no-deps nvidia-modelopt` plus onnx-graphsurgeon, onnxconverter-common, onnxslim,
onnxscript, ml_dtypes, lief, cppimport, pydantic, omegaconf, pulp, regex, safetensors, scipy.

    python benchmarks/int8_modelopt.py runs/A/export runs/B/export ...
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def clips(export: Path):
    """(test EvalSet, calibration clips): the clips `edgekd export` used for this run."""
    from edgekd.export.onnx_export import load_student
    from edgekd.export.int8 import Int8Settings
    from edgekd.runtime.evalset import build_evalset

    art = json.loads((export / "artifact.json").read_text())
    _, _, spec = load_student((export / art["checkpoint"]["path"]).resolve())
    ev = build_evalset(None, spec, split="test", strict=False)
    calib = build_evalset(None, spec, split="train", limit=Int8Settings().calibration_clips, strict=False)
    return ev, calib.x


def quantize_modelopt(src: Path, dst: Path, calib: np.ndarray, method: str) -> float:
    from modelopt.onnx.quantization import quantize

    t0 = time.perf_counter()
    quantize(str(src), quantize_mode="int8", calibration_data={"video": calib}, calibration_method=method,
             calibration_eps=["cpu"], output_path=str(dst), log_level="ERROR")
    return time.perf_counter() - t0


def quantize_edgekd(src: Path, dst: Path, calib: np.ndarray) -> float:
    from edgekd.export.qdq import QdqSettings, quantize_qdq

    t0 = time.perf_counter()
    quantize_qdq(src, dst, calib, QdqSettings())
    return time.perf_counter() - t0


def measure(path: Path, ev, ref: np.ndarray) -> dict:
    import onnx

    from edgekd.export.qdq import TRT_EMULATION, check_trt_rules
    from edgekd.runtime.metrics import agreement
    from edgekd.runtime.runners import OrtRunner, logits

    with OrtRunner(path, "cpu", "int8", graph_optimization=TRT_EMULATION) as r:
        out = logits(r, ev.x)
    d = np.abs(out - ref)
    m = onnx.load(str(path))
    ops = [n.op_type for n in m.graph.node]
    return {"agreement": agreement(ref, out), "mean_abs": float(d.mean()), "max_abs": float(d.max()),
            "top1": float((out.argmax(1) == ev.labels).mean()), "q_nodes": ops.count("QuantizeLinear"),
            "opset": next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
            "rules": check_trt_rules(m)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("exports", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="write the rows here too")
    args = ap.parse_args()
    from edgekd.runtime.runners import OrtRunner, logits

    # Importing modelopt.onnx patches ONNX Runtime's calibrators for the whole process (edgekd's
    # quantize_static then fails), so every edgekd file is written before Model Optimizer is imported.
    loaded, rows = [], []
    tmp = tempfile.TemporaryDirectory()
    for k, export in enumerate(args.exports):
        ev, calib = clips(export)
        src = export / "student.onnx"
        with OrtRunner(src, "cpu", "fp32") as r:
            ref = logits(r, ev.x)
        student = json.loads((export / "artifact.json").read_text())["student"]["name"]
        files = {"edgekd (auto)": Path(tmp.name) / f"{k}-edgekd.onnx"}
        secs = {"edgekd (auto)": quantize_edgekd(src, files["edgekd (auto)"], calib)}
        loaded.append((student, src, ev, calib, ref, files, secs))
    for student, src, ev, calib, ref, files, secs in loaded:
        for method in ("max", "entropy"):
            name = f"modelopt ({method})"
            files[name] = files["edgekd (auto)"].with_name(f"{student}-modelopt-{method}.onnx")
            secs[name] = quantize_modelopt(src, files[name], calib, method)
        for name, path in files.items():
            row = {"student": student, "method": name, "clips": len(ev), "calib": len(calib),
                   "fp32_top1": float((ref.argmax(1) == ev.labels).mean()), "seconds": secs[name],
                   **measure(path, ev, ref)}
            rows.append(row)
            print(f"{student:24s} {name:18s} agree {row['agreement']:.3f}  mean|Δ| {row['mean_abs']:.4f}  "
                  f"max|Δ| {row['max_abs']:.3f}  top1 {row['top1']:.3f} (fp32 {row['fp32_top1']:.3f})  "
                  f"Q {row['q_nodes']}  opset {row['opset']}  {row['seconds']:.1f} s  rules {row['rules'] or 'ok'}",
                  flush=True)
    tmp.cleanup()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
