"""INT8 the way TensorRT reads it: explicit quantization, one Q/DQ ONNX from CPU to Jetson.

TensorRT's explicit-quantization rules (TensorRT developer guide, "Working with Quantized Types"):
int8 only, symmetric (zero point 0), per-tensor activation scales, per-output-channel weight scales
on the weighted layers, and QuantizeLinear/DequantizeLinear pairs at the *inputs* of the layers it
fuses into INT8 kernels: Conv / Gemm / MatMul, plus the other input of a residual Add so the add
fuses into the convolution before it. Biases stay float (TensorRT quantizes them itself; an int32
bias DequantizeLinear is not a pattern it fuses). The file needs no calibrator on the target:
`trtexec --onnx=student.int8.onnx --int8 --fp16` builds it as it stands.

The quantizer is ONNX Runtime's `quantize_static` (installed already) with those settings. NVIDIA
Model Optimizer writes the same kind of graph but its ONNX extra pins onnxruntime-gpu, cupy-cuda12x
and onnx~=1.21 (it would replace the CPU onnxruntime and downgrade onnx), so it is not used.

Calibration ranges come from real training clips. The method is chosen by measurement: with
"auto" (the default) export writes the graph with minmax and with percentile ranges and keeps the
one whose outputs agree best with FP32 on the calibration clips (training data, never the test
split). benchmarks/int8_calibration.py measured why: minmax won on tiny3d, percentile on x3d_xs,
and entropy gave minmax's ranges exactly (docs/deploy.md).

Measuring it on CPU: ONNX Runtime's *optimized* CPU session fuses Q/DQ into integer kernels that,
on AVX2 CPUs without VNNI, saturate int16 pair sums for full-range int8 weights - that is a CPU
kernel effect, not the model's. With graph optimizations off, ONNX Runtime executes the graph as
written (DequantizeLinear -> float op -> QuantizeLinear), which is exactly the arithmetic TensorRT
does (int8 x int8 products summed exactly, rescaled): `TRT_EMULATION` is that session setting,
and accuracy/parity of the TensorRT file are measured with it.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ExportError
from edgekd.registry import did_you_mean

METHODS = ("minmax", "entropy", "percentile")
# Layers TensorRT fuses with Q/DQ at their inputs (weighted layers + residual adds).
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul", "Add")
TRT_EMULATION = "disable"  # OrtRunner graph_optimization for TensorRT's arithmetic (see module docstring)


@dataclass(frozen=True)
class QdqSettings:
    method: str = "auto"            # "auto": choose_method picks by measurement (docs/deploy.md)
    percentile: float = 99.999      # for method="percentile"
    calibration_clips: int = 32

    def check(self) -> "QdqSettings":
        if self.method not in METHODS + ("auto",):
            raise ConfigError(f"unknown INT8 calibration method {self.method!r}",
                              did_you_mean(self.method, list(METHODS) + ["auto"]))
        if self.calibration_clips < 1:
            raise ConfigError("INT8 needs at least 1 calibration clip", "pass --calib-clips 32 or more")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


AUTO_METHODS = ("minmax", "percentile")


def choose_method(fp32_path: Path, calib: np.ndarray, settings: "QdqSettings", workdir: Path,
                  input_name: str = "video") -> tuple[str, dict[str, Any]]:
    """(method, figures): the AUTO_METHODS candidate whose TensorRT-arithmetic outputs agree best with
    FP32 on the calibration clips (top-1 agreement, then mean logit cosine)."""
    from dataclasses import replace

    from edgekd.runtime.metrics import agreement
    from edgekd.runtime.runners import OrtRunner, logits

    with OrtRunner(fp32_path, "cpu", "fp32") as r:
        ref = logits(r, calib)
    figures: dict[str, Any] = {}
    for m in AUTO_METHODS:
        cand = workdir / f".calib-{m}.onnx"
        quantize_qdq(fp32_path, cand, calib, replace(settings, method=m), input_name=input_name)
        with OrtRunner(cand, "cpu", "int8", graph_optimization=TRT_EMULATION) as r:
            out = logits(r, calib)
        cand.unlink()
        cos = (ref * out).sum(1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1), 1e-12)
        figures[m] = {"agreement_with_fp32": agreement(ref, out), "cosine_mean": float(cos.mean())}
    best = max(AUTO_METHODS, key=lambda m: (figures[m]["agreement_with_fp32"], figures[m]["cosine_mean"]))
    return best, figures


def quantize_qdq(fp32_path: str | Path, out_path: str | Path, calib, settings: QdqSettings = QdqSettings(),
                 input_name: str = "video") -> dict[str, Any]:
    """Write TensorRT-rules Q/DQ INT8 of `fp32_path`, calibrated on `calib` (N, 3, T, S, S), or on
    {input name: (N, ...)} for a several-input model (method "auto" needs the one-input form);
    returns what was done."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgekd.export.int8 import _reader
    from edgekd.export.onnx_export import prune_opsets
    from edgekd.io import atomic_path

    settings.check()
    n_calib = len(next(iter(calib.values()))) if isinstance(calib, dict) else len(calib)
    if n_calib == 0:
        raise ExportError("no calibration clips for INT8", "the dataset yielded no decodable clips")
    out_path = Path(out_path)
    if settings.method == "auto":
        from dataclasses import replace

        chosen, figures = choose_method(Path(fp32_path), calib, settings, out_path.parent, input_name)
        info = quantize_qdq(fp32_path, out_path, calib, replace(settings, method=chosen), input_name)
        return {**info, "method_selection": {"asked": "auto", "chosen": chosen, "on": "calibration clips",
                                             "candidates": figures}}
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[settings.method]
    extra: dict[str, Any] = {"ActivationSymmetric": True, "WeightSymmetric": True,  # zero point 0 everywhere
                             "QuantizeBias": False}                                # TensorRT quantizes biases itself
    if settings.method == "percentile":
        extra["CalibPercentile"] = settings.percentile
    model = onnx.load(str(fp32_path))
    batch = 1 if settings.method != "minmax" else 4  # histogram calibrators keep per-batch state: stay small
    fixed = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    batch = fixed or batch
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".qdq-") as tmp:
        prep = Path(tmp) / "prep.onnx"
        quant_pre_process(str(fp32_path), str(prep), skip_symbolic_shape=True)
        staged = Path(tmp) / out_path.name
        try:
            with quiet_quantizer():
                quantize_static(str(prep), str(staged), _reader(input_name, calib, batch),
                                quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=False,
                                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                                op_types_to_quantize=list(QUANTIZED_OPS), calibrate_method=method,
                                extra_options=extra)
        except Exception as e:  # noqa: BLE001 - ORT raises bare Exceptions for unsupported graphs
            raise ExportError(f"INT8 quantization of {fp32_path} failed: {type(e).__name__}: {str(e).splitlines()[0]}",
                              "try --int8-method minmax, or export with --no-quantize") from e
        q = onnx.load(str(staged))
    del q.metadata_props[:]  # carry the preprocessing contract over; quantize_static drops it
    for p in model.metadata_props:
        q.metadata_props.add(key=p.key, value=p.value)
    q.metadata_props.add(key="precision", value="int8-qdq-tensorrt")
    prune_opsets(q)
    onnx.checker.check_model(q)
    problems = check_trt_rules(q)
    if problems:
        raise ExportError(f"the INT8 graph breaks TensorRT's explicit-quantization rules: {problems[0]}",
                          "report the student; export with --no-quantize meanwhile")
    with atomic_path(out_path) as t:
        onnx.save(q, str(t))
    ops = [n.op_type for n in q.graph.node]
    return {**settings.to_dict(), "format": "QDQ", "rules": "tensorrt-explicit",
            "calibration_clips": int(n_calib), "calibration_batches": -(-n_calib // batch),
            "weights": "int8 symmetric per-channel", "activations": "int8 symmetric per-tensor",
            "quantized_ops": list(QUANTIZED_OPS), "bias": "float",
            "quantize_nodes": ops.count("QuantizeLinear"), "dequantize_nodes": ops.count("DequantizeLinear"),
            "quantizer": "onnxruntime.quantization.quantize_static"}


@contextlib.contextmanager
def quiet_quantizer():
    """ORT's quantizer prints calibration progress and logs a root-logger WARNING per integer tensor it
    skips (shape arithmetic in TSM/X3D graphs): noise to the user, so neither reaches the console."""
    import logging

    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def check_trt_rules(model) -> list[str]:
    """What in a Q/DQ graph TensorRT's explicit quantization would not take as written (empty = fine)."""
    from onnx import TensorProto, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in model.graph.node if n.op_type == "Constant" and n.attribute}
    producers = {o: n for n in model.graph.node for o in n.output}
    bad: list[str] = []
    for n in model.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        zp = inits.get(n.input[2]) if len(n.input) > 2 else None
        zp = zp if zp is not None else consts.get(n.input[2]) if len(n.input) > 2 else None
        if zp is None:
            bad.append(f"{n.name}: no zero point (the default uint8 type)")
            continue
        if zp.data_type != TensorProto.INT8:
            bad.append(f"{n.name}: zero point type {TensorProto.DataType.Name(zp.data_type)}, not INT8")
        elif np.any(numpy_helper.to_array(zp) != 0):
            bad.append(f"{n.name}: non-zero zero point (asymmetric)")
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            w = inits[n.input[0]]
            if w.data_type == TensorProto.INT32:
                bad.append(f"{n.name}: int32 bias dequantization")
            scale = inits.get(n.input[1])
            consumer = next((c for c in model.graph.node if n.output[0] in c.input), None)
            is_conv_weight = consumer is not None and consumer.op_type == "Conv" and consumer.input[1] == n.output[0]
            # one scale for the whole weight (a scalar or a 1-element vector) while the Conv has several outputs
            if is_conv_weight and scale is not None and (len(scale.dims) != 1 or scale.dims[0] < w.dims[0]):
                bad.append(f"{n.name}: Conv weight quantized per tensor, not per output channel")
        elif n.op_type == "DequantizeLinear" and n.input[0] in producers and producers[n.input[0]].op_type != "QuantizeLinear":
            bad.append(f"{n.name}: DequantizeLinear not fed by a QuantizeLinear")
    return bad
