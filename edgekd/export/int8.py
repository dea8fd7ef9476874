"""INT8 for CPU / ONNX Runtime: static QDQ quantization calibrated on real dataset clips.

`quantize_static` runs the FP32 model over the calibration clips, records each activation's range
(MinMax, Entropy or Percentile), and inserts QuantizeLinear/DequantizeLinear pairs (QDQ format, the
one ORT's CPU kernels fuse into integer convolutions/GEMMs and the one TensorRT reads as explicit
quantization). Weights are quantized per output channel (symmetric int8, 7-bit range by default,
see `reduce_range`); activations default to asymmetric uint8, the pairing ORT recommends for x86.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ConfigError, ExportError
from edgekd.export.ort_quantize import calibration_batch, finish_quantized, static_qdq
from edgekd.registry import did_you_mean

METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class Int8Settings:
    method: str = "auto"              # activation range estimator ("auto": chosen by measurement, see qdq)
    per_channel: bool = True          # one weight scale per output channel
    activation: str = "uint8"         # "uint8" (asymmetric, x86) or "int8" (symmetric, ARM / TensorRT)
    # 7-bit weights. x86 CPUs without VNNI multiply u8 x s8 with vpmaddubsw, whose int16 pair sums
    # saturate with full 8-bit weights; on an AVX2-only EPYC that took a trained tiny3d's worst-clip
    # logit cosine from 0.99 to 0.44. One bit of weight precision is the cheaper loss, and the file
    # stays correct on every CPU the export may land on (VNNI, AVX2, ARM).
    reduce_range: bool = True
    percentile: float = 99.999        # for method="percentile"
    calibration_clips: int = 32
    exclude_op_types: tuple[str, ...] = field(default_factory=tuple)  # e.g. ("Gemm",) keeps the head in FP32

    def check(self) -> "Int8Settings":
        if self.method not in METHODS + ("auto",):  # auto: the Q/DQ export measures minmax vs percentile
            raise ConfigError(f"unknown INT8 calibration method {self.method!r}",
                              did_you_mean(self.method, list(METHODS) + ["auto"]))
        if self.activation not in ("uint8", "int8"):
            raise ConfigError(f"INT8 activation type must be 'uint8' or 'int8', got {self.activation!r}")
        if self.calibration_clips < 1:
            raise ConfigError("INT8 needs at least 1 calibration clip", "pass --calib-clips 32 or more")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exclude_op_types"] = list(self.exclude_op_types)
        return d


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calib: np.ndarray,
                  settings: Int8Settings = Int8Settings(), input_name: str = "video") -> dict[str, Any]:
    """Write a QDQ INT8 copy of `fp32_path` calibrated on `calib` (N, 3, T, S, S); returns what was done."""
    import onnx
    from onnxruntime.quantization import QuantType

    from edgekd.io import atomic_path

    settings.check()
    if len(calib) == 0:
        raise ExportError("no calibration clips for INT8", "the dataset yielded no decodable clips")
    out_path = Path(out_path)
    if settings.method == "auto":  # the measured choice is made for the Q/DQ file; alone, the CPU variant uses minmax
        from dataclasses import replace

        settings = replace(settings, method="minmax")
    extra: dict[str, Any] = {"WeightSymmetric": True,
                             "ActivationSymmetric": settings.activation == "int8"}
    if settings.method == "percentile":
        extra["CalibPercentile"] = settings.percentile
    model = onnx.load(str(fp32_path))
    exclude = [n.name for n in model.graph.node if n.op_type in settings.exclude_op_types] or None
    batch = calibration_batch(model, settings.method)
    quantized = static_qdq(fp32_path, out_path.parent, calib, input_name, method=settings.method, batch=batch,
                           hint="try --int8-method minmax, or export without --int8",
                           per_channel=settings.per_channel, reduce_range=settings.reduce_range,
                           activation_type=QuantType.QUInt8 if settings.activation == "uint8" else QuantType.QInt8,
                           weight_type=QuantType.QInt8, nodes_to_exclude=exclude, extra_options=extra)
    finish_quantized(quantized, model, "int8-qdq")
    with atomic_path(out_path) as t:
        onnx.save(quantized, str(t))
    ops = [n.op_type for n in quantized.graph.node]
    return {**settings.to_dict(), "calibration_batches": -(-len(calib) // batch),
            "calibration_clips": int(len(calib)), "format": "QDQ",
            "weights": "int8 symmetric " + ("per-channel" if settings.per_channel else "per-tensor"),
            "activations": f"{settings.activation} " + ("symmetric" if settings.activation == "int8" else "asymmetric"),
            "quantize_nodes": ops.count("QuantizeLinear"), "dequantize_nodes": ops.count("DequantizeLinear"),
            "excluded_nodes": exclude or []}
