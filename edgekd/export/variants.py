"""The reduced-precision ONNX files of an export, each proven on the same clips as student.onnx.

    student.int8.onnx       Q/DQ by TensorRT's rules (edgekd.export.qdq): what TensorRT, DeepStream
                            and Triton's tensorrt_plan compile; accuracy measured with TensorRT's
                            arithmetic on CPU (ORT, graph as written) and, for information, with ORT's
                            fused CPU kernels
    student.int8-cpu.onnx   ORT's x86 format (uint8 asymmetric activations, 7-bit weights,
                            edgekd.export.int8) - kept only when it is the fastest ORT CPU file here
    student.fp16.onnx       FP16 weights/activations, FP32 I/O (edgekd.export.fp16) for ORT CUDA / Triton

Each function returns artifact.json entries; `runtime_map` says which file each runtime should load.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.runtime.artifact import FILES

ONNX, INT8, FP16, CPU_INT8 = FILES["onnx"], FILES["int8"], FILES["fp16"], FILES["int8-cpu"]
# The CPU variant must beat the next-fastest ORT CPU file by this much to be worth a second INT8 file.
CPU_KEEP_MARGIN = 0.05


def eval_batch(runner) -> int:
    """8 clips per call, or exactly the batch a static-batch model takes."""
    shape = getattr(runner, "input_shape", None)
    return shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else 8


def _eval_logits(runner, x: np.ndarray, rep, desc: str) -> np.ndarray:
    from edgekd.runtime.runners import logits

    with rep.bar(desc, len(x)) as bar:
        return logits(runner, x, eval_batch(runner), bar.advance)


def _accuracy(ev, f32: np.ndarray, out: np.ndarray) -> dict[str, Any]:
    from edgekd.runtime.metrics import agreement, classification

    m32, m = classification(f32, ev.labels), classification(out, ev.labels)
    return {**ev.describe(), "fp32_top1": m32["top1"], "top1": m["top1"], "top5": m["top5"],
            "delta": None if m32["top1"] is None else m["top1"] - m32["top1"], "agreement_with_fp32": agreement(f32, out)}


def _say_acc(rep, label: str, acc: dict[str, Any]) -> None:
    head = (f"{acc['top1']:.3f} vs FP32 {acc['fp32_top1']:.3f} (Δ {acc['delta']:+.3f}), "
            if acc["fp32_top1"] is not None else "(labels are not the model's classes) ")
    rep.done(f"{label} accuracy on {acc['clips']} {acc['split']} clips: {head}agreement with FP32 "
             f"{acc['agreement_with_fp32']:.3f}")


def cpu_latency_ms(paths: dict[str, Path], x1: np.ndarray, rounds: int = 3, budget_s: float = 1.0) -> dict[str, float]:
    """Median batch-1 ORT CPU latency (1 thread) per file; rounds interleave the files so load hits all alike.
    Calls per round: what fits in about `budget_s` per file (2 to 10), so a large student stays quick."""
    from edgekd.runtime.runners import OrtRunner

    runners = {k: OrtRunner(p, "cpu", k, threads=1) for k, p in paths.items()}
    times: dict[str, list[float]] = {k: [] for k in paths}
    try:
        slowest = 0.0
        for r in runners.values():
            r.load()
            r.warmup(x1, 1)
            t0 = time.perf_counter()
            r.run(x1)
            slowest = max(slowest, time.perf_counter() - t0)
        calls = int(min(10, max(2, budget_s / rounds / max(slowest, 1e-6))))
        for _ in range(rounds):
            for k, r in runners.items():
                for _ in range(calls):
                    t0 = time.perf_counter()
                    r.run(x1)
                    times[k].append(time.perf_counter() - t0)
    finally:
        for r in runners.values():
            r.close()
    return {k: float(np.median(v) * 1e3) for k, v in times.items()}


def int8_artifact(stage: Path, *, rep, settings, info, ev, calib, cmp, f32: np.ndarray, tol,
                  opset: int) -> dict[str, Any]:
    """student.int8.onnx: Q/DQ by TensorRT's rules, its parity and accuracy; the artifact entry."""
    from edgekd.export.qdq import TRT_EMULATION, QdqSettings, quantize_qdq
    from edgekd.runtime.artifact import file_entry
    from edgekd.runtime.runners import OrtRunner

    t0 = time.perf_counter()
    q = quantize_qdq(stage / ONNX, stage / INT8, calib.x,
                     QdqSettings(method=settings.method, percentile=settings.percentile,
                                 calibration_clips=settings.calibration_clips), input_name=info.input_name)
    picked = (f" (chosen over {', '.join(m for m in q['method_selection']['candidates'] if m != q['method'])} by "
              "agreement with FP32 on the calibration clips)") if "method_selection" in q else ""
    rep.done(f"{INT8}: Q/DQ by TensorRT's rules ({q['weights']} weights, {q['activations']} activations), "
             f"{q['method']}{picked} calibration on {q['calibration_clips']} {calib.split} clips ({time.perf_counter() - t0:.1f} s)")
    with OrtRunner(stage / INT8, "cpu", "int8", graph_optimization=TRT_EMULATION) as emu:
        par = cmp.judge(emu, f"{INT8} (TensorRT arithmetic on ONNX Runtime CPU)", tol["int8"])
        acc = _accuracy(ev, f32, _eval_logits(emu, ev.x, rep, "INT8 (TensorRT arithmetic) on eval clips"))
    _say_acc(rep, "INT8 (TensorRT arithmetic)", acc)
    with OrtRunner(stage / INT8, "cpu", "int8") as fused:  # ORT's fused CPU kernels, for information
        acc_cpu = _accuracy(ev, f32, _eval_logits(fused, ev.x, rep, "INT8 (ORT CPU kernels) on eval clips"))
    return file_entry(stage, INT8, fmt="onnx", precision="int8", runtime="tensorrt",
                      runtimes=["tensorrt", "deepstream", "triton:tensorrt_plan", "onnxruntime-cpu"],
                      opset=opset, quantization=q, parity=par, accuracy=acc,
                      measured_with="onnxruntime CPU, graph optimizations off: DequantizeLinear -> float op -> "
                                    "QuantizeLinear, TensorRT's int8 arithmetic",
                      onnxruntime_cpu_kernels={"accuracy": acc_cpu}, calibration=calib.describe(),
                      input={"name": info.input_name, "shape": info.input_shape})


def cpu_int8_artifact(stage: Path, *, rep, settings, info, ev, calib, cmp, f32: np.ndarray, tol, opset: int,
                      qdq: dict[str, Any], policy: str = "auto") -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """student.int8-cpu.onnx, only worth a second INT8 file when ORT runs it faster than the others
    (or `policy` "always"); (entry or None, the CPU choice record). qdq: student.int8.onnx's entry."""
    from edgekd.export.int8 import quantize_int8
    from edgekd.runtime.artifact import file_entry
    from edgekd.runtime.runners import OrtRunner

    choice: dict[str, Any] = {"policy": policy}
    q, acc_cpu = qdq["quantization"], qdq["onnxruntime_cpu_kernels"]["accuracy"]
    cpu_settings = dataclasses.replace(settings, method=q["method"]) if settings.method == "auto" else settings
    qc = quantize_int8(stage / ONNX, stage / CPU_INT8, calib.x, cpu_settings, input_name=info.input_name)
    with OrtRunner(stage / CPU_INT8, "cpu", "int8") as cpu:
        par_c = cmp.judge(cpu, f"{CPU_INT8} (ONNX Runtime CPU INT8)", tol["int8"], raise_on_fail=False)
        acc_c = _accuracy(ev, f32, _eval_logits(cpu, ev.x, rep, "INT8 (CPU variant) on eval clips"))
    files = {"fp32": ONNX, "int8": INT8, "int8-cpu": CPU_INT8}
    ms = cpu_latency_ms({k: stage / f for k, f in files.items()}, ev.x[:1])
    best_other = min(ms["fp32"], ms["int8"])
    faster = ms["int8-cpu"] < (1 - CPU_KEEP_MARGIN) * best_other
    keep = policy == "always" or (faster and par_c["passed"])
    # ORT's fused kernels may lose accuracy on the Q/DQ file (see edgekd.export.qdq): it counts only when they agree
    usable = {"fp32": ms["fp32"], "int8-cpu": ms["int8-cpu"] if keep else float("inf"),
              "int8": ms["int8"] if acc_cpu["agreement_with_fp32"] >= 0.95 else float("inf")}
    fastest = min(usable, key=usable.get)
    why = (f"ORT CPU batch 1, 1 thread: FP32 {ms['fp32']:.2f} ms, Q/DQ INT8 {ms['int8']:.2f} ms, "
           f"CPU INT8 {ms['int8-cpu']:.2f} ms")
    choice.update(kept=keep, latency_ms=ms, fastest_on_cpu=files[fastest],
                  why=why + ("" if keep else (" - not faster, so not kept" if par_c["passed"] else
                                              " - fails parity, so not kept")))
    (rep.done if keep else rep.warn)(f"{CPU_INT8}: {choice['why']}")
    if not keep:
        (stage / CPU_INT8).unlink()
        return None, choice
    return file_entry(stage, CPU_INT8, fmt="onnx", precision="int8", runtime="onnxruntime-cpu",
                      runtimes=["onnxruntime-cpu"], opset=opset, quantization=qc, parity=par_c,
                      accuracy=acc_c, calibration=calib.describe(), latency_ms=ms,
                      input={"name": info.input_name, "shape": info.input_shape}), choice


def fp16_artifact(stage: Path, *, rep, info, ev, cmp, f32: np.ndarray, tol,
                  opset: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """student.fp16.onnx with its parity vs PyTorch and agreement with FP32 on the eval clips (ORT CPU).

    (entry, record). An FP16 file that fails parity is an optional extra, not a failed export: it is
    removed and the record says why (the entry is None)."""
    from edgekd.export.fp16 import convert_fp16
    from edgekd.runtime.artifact import file_entry
    from edgekd.runtime.runners import OrtRunner

    conv = convert_fp16(stage / ONNX, stage / FP16)
    with OrtRunner(stage / FP16, "cpu", "fp16") as half:
        par = cmp.judge(half, f"{FP16} (ONNX Runtime CPU FP16)", tol["fp16"], raise_on_fail=False)
        if not par["passed"]:
            half.close()
            (stage / FP16).unlink()
            rep.warn(f"{FP16} dropped: " + "; ".join(par["failures"]) +
                     " (FP16 is not accurate enough for this student; TensorRT FP16 may be neither - check its parity)")
            return None, {"kept": False, "parity": par, "conversion": conv}
        acc = _accuracy(ev, f32, _eval_logits(half, ev.x, rep, "FP16 on eval clips"))
    c = par["clips"]
    rep.done(f"{FP16}: FP16 inside, FP32 I/O; parity vs PyTorch max |Δ| {c['max_abs']:.2e}, "
             f"cosine ≥ {c['cosine_min']:.5f}; agreement with FP32 {acc['agreement_with_fp32']:.3f}")
    return file_entry(stage, FP16, fmt="onnx", precision="fp16", runtime="onnxruntime-cuda",
                      runtimes=["onnxruntime-cuda", "triton:onnxruntime", "onnxruntime-cpu"], opset=opset,
                      conversion=conv, parity=par, accuracy=acc,
                      input={"name": info.input_name, "shape": info.input_shape, "dtype": "float32"}), {"kept": True}


def runtime_map(artifacts: list[dict[str, Any]], cpu_choice: dict[str, Any] | None) -> dict[str, str]:
    """Which file each runtime should load (artifact.json "deploy" block)."""
    files = {a["file"] for a in artifacts}
    out = {"tensorrt fp32/fp16": f"{ONNX} (TensorRT makes FP16 itself: --fp16)"}
    if INT8 in files:
        out["tensorrt int8"] = f"{INT8} (explicit Q/DQ: --int8, no calibrator)"
    out["onnxruntime-cpu"] = (cpu_choice or {}).get("fastest_on_cpu", ONNX)
    if FP16 in files:
        out["onnxruntime-cuda fp16"] = FP16
    return out
