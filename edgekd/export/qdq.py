"""INT8 the way TensorRT reads it: explicit quantization, one Q/DQ ONNX from CPU to Jetson.

TensorRT's explicit-quantization rules (TensorRT developer guide, "Working with Quantized Types"):
int8 only, symmetric (zero point 0), per-tensor activation scales, per-output-channel weight scales
on the weighted layers, and QuantizeLinear/DequantizeLinear pairs at the *inputs* of the layers it
fuses into INT8 kernels: Conv / Gemm / MatMul, plus the other input of a residual Add so the add
fuses into the convolution before it. Biases stay float (TensorRT quantizes them itself; an int32
bias DequantizeLinear is not a pattern it fuses). The file needs no calibrator on the target:
`trtexec --onnx=student.int8.onnx --int8 --fp16` builds it as it stands.

The quantizer is ONNX Runtime's `quantize_static` (installed already) with those settings, and
`place_for_tensorrt` then keeps the pairs only on quantized-layer inputs (not on graph outputs, not
between a Conv and the activation TensorRT fuses into it). NVIDIA Model Optimizer's ONNX PTQ, measured
side by side on the same calibration clips (benchmarks/int8_modelopt.py, docs/deploy.md), places them
the same way and wins on some students, loses on others; it writes opset 19 (fp16/fp32 scales), which the ONNX
parser of TensorRT 8.5/8.6 (JetPack 5.1, 6.0: opset <= 17) rejects, its [onnx] extra pins
onnxruntime-gpu, and importing it patches ONNX Runtime's calibrators in the process - so it is not used.
The Q/DQ file is opset 17 (per-channel DequantizeLinear needs >= 13): every TensorRT from 8.5 on reads it.

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

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ExportError
from edgekd.export.ort_quantize import calibration_batch, finish_quantized, static_qdq
from edgekd.registry import did_you_mean

METHODS = ("minmax", "entropy", "percentile")
# Layers TensorRT fuses with Q/DQ at their inputs (weighted layers + residual adds). The classifier
# Gemm stays float, as NVIDIA Model Optimizer's ONNX PTQ leaves it: a few thousand MACs, and its int8
# input cost accuracy (trained tiny3d, 72 test clips: mean |Δ logit| 0.0229 quantized, 0.0213 float).
QUANTIZED_OPS = ("Conv", "MatMul", "Add")
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
    from onnxruntime.quantization import QuantType

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
    extra: dict[str, Any] = {"ActivationSymmetric": True, "WeightSymmetric": True,  # zero point 0 everywhere
                             "QuantizeBias": False}                                # TensorRT quantizes biases itself
    if settings.method == "percentile":
        extra["CalibPercentile"] = settings.percentile
    model = onnx.load(str(fp32_path))
    batch = calibration_batch(model, settings.method)
    q = static_qdq(fp32_path, out_path.parent, calib, input_name, method=settings.method, batch=batch,
                   hint="try --int8-method minmax, or export with --no-quantize",
                   per_channel=True, reduce_range=False, activation_type=QuantType.QInt8,
                   weight_type=QuantType.QInt8, op_types_to_quantize=list(QUANTIZED_OPS), extra_options=extra)
    place_for_tensorrt(q)
    finish_quantized(q, model, "int8-qdq-tensorrt")
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


# Q/DQ placement. ONNX Runtime's quantizer quantizes the outputs of the ops it quantizes as well as
# their inputs: the graph output `logits` and every Conv output before its ReLU got a pair. TensorRT
# fuses Conv+ReLU (and a residual Add into the Conv before it) and reads a Q/DQ pair as "run this
# edge in int8": a pair on a Conv output before its activation quantizes the pre-activation tensor
# (half of its int8 range wasted on values ReLU zeroes), and one on the logits rounds the answer.
# So pairs stay only on edges into a quantized layer (TensorRT's explicit-quantization guide).
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
FUSED_ACTIVATIONS = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu", "Selu",
                     "Softplus")


def _source(tensor: str, producers: dict) -> str:
    """The float tensor behind `tensor`: through a DequantizeLinear <- QuantizeLinear pair, if any."""
    dq = producers.get(tensor)
    if dq is not None and dq.op_type == "DequantizeLinear":
        q = producers.get(dq.input[0])
        if q is not None and q.op_type == "QuantizeLinear":
            return q.input[0]
    return tensor


def _made_by(tensor: str, producers: dict) -> str:
    n = producers.get(_source(tensor, producers))
    return n.op_type if n is not None else ""


def _wants_qdq(node, i: int, producers: dict) -> bool:
    """Should input `i` of `node` be quantized for TensorRT: data/weight inputs of a weighted layer, and
    the residual input of an Add whose other input comes straight from a Conv (the Add fuses into it)."""
    if node.op_type in WEIGHTED_OPS:
        return i in (0, 1)
    if node.op_type == "Add" and len(node.input) == 2:
        other = node.input[1 - i]
        if _made_by(other, producers) != "Conv":
            return False
        return _made_by(node.input[i], producers) != "Conv" or i == 1
    return False


def place_for_tensorrt(model) -> int:
    """Move activation Q/DQ pairs to where TensorRT wants them (in place); returns the pairs dropped.

    Every consumer of a dequantized activation that is not a quantized-layer input reads the float
    tensor again; a pair on a graph output is removed and the output keeps its name."""
    g = model.graph
    producers = {o: n for n in g.node for o in n.output}
    outputs = {o.name for o in g.output}
    for dq in [n for n in g.node if n.op_type == "DequantizeLinear"]:  # 1. graph outputs: no pair
        if dq.output[0] in outputs and _source(dq.output[0], producers) != dq.output[0]:
            src, name = _source(dq.output[0], producers), dq.output[0]
            for n in g.node:
                n.output[:] = [f"{name}.dq" if o == name else o for o in n.output]
                n.output[:] = [name if o == src else o for o in n.output]
                n.input[:] = [name if t == src else t for t in n.input]
    producers = {o: n for n in g.node for o in n.output}
    for n in g.node:  # 2. consumers that are not quantized layers read the float tensor
        for i, t in enumerate(n.input):
            src = _source(t, producers)
            if src != t and not _wants_qdq(n, i, producers):
                n.input[i] = src
    return _drop_dead_qdq(g, outputs)


def _drop_dead_qdq(g, outputs: set[str]) -> int:
    """Remove Q/DQ nodes nothing reads any more (DQs first, then the Qs they fed)."""
    dropped = 0
    for op in ("DequantizeLinear", "QuantizeLinear"):
        used = {t for n in g.node for t in n.input} | outputs
        dead = [n for n in g.node if n.op_type == op and n.output[0] not in used]
        for n in dead:
            g.node.remove(n)
        dropped += len(dead) if op == "QuantizeLinear" else 0
    used = {t for n in g.node for t in n.input}
    for init in [i for i in g.initializer if i.name not in used]:  # their scales and zero points
        g.initializer.remove(init)
    return dropped


def check_placement(model) -> list[str]:
    """Q/DQ pairs where TensorRT does not want them: on a graph output, or on a weighted layer's output
    whose only readers are activations TensorRT fuses into that layer."""
    g = model.graph
    producers = {o: n for n in g.node for o in n.output}
    readers: dict[str, list] = {}
    for n in g.node:
        for t in n.input:
            readers.setdefault(t, []).append(n)
    bad = [f"{o.name}: Q/DQ on a graph output (TensorRT rounds the model's answer to int8)"
           for o in g.output if _source(o.name, producers) != o.name]
    for dq in (n for n in g.node if n.op_type == "DequantizeLinear"):
        src = _source(dq.output[0], producers)
        if src == dq.output[0] or producers.get(src) is None:
            continue
        made_by = producers[src].op_type
        users = readers.get(dq.output[0], [])
        if made_by in WEIGHTED_OPS and users and all(u.op_type in FUSED_ACTIVATIONS for u in users):
            bad.append(f"{dq.name}: Q/DQ between {made_by} and its {users[0].op_type}, which TensorRT fuses "
                       "(quantize the next layer's input instead)")
    return bad


def check_trt_rules(model) -> list[str]:
    """What in a Q/DQ graph TensorRT's explicit quantization would not take as written, or would run
    worse than the float graph because of where a pair sits (empty = fine)."""
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
    return bad + check_placement(model)
