"""Per-layer latency estimate for a profile bench cannot measure (nn-Meter's idea, roofline per kernel).

One forward pass on zeros, with forward hooks on every leaf module and FlopCounterMode tracking
which module each FLOP belongs to, gives per layer: FLOPs, bytes (parameters + input + output at the
precision's element size) and whether it is a kernel of its own. Then

    layer time  = max(FLOPs / peak[precision], bytes / bandwidth) + kernel_launch_us
    model time  = sum over kernels

Normalization, activation and dropout layers are assumed fused into the kernel before them (as
TensorRT and ONNX Runtime do), so they add neither launches nor traffic. That sum is a floor; real
kernels reach a fraction of peak. The estimate is floor x RATIO[1] with the band floor x [RATIO[0],
RATIO[2]]: the median, min and max of measured / floor found by benchmarks/predictor_error.py over the
8 students at batch 1 and 8 on a CPU host (docs/bench.md); unverified on GPUs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from edgekd.bench.roofline import BYTES_PER_ELEMENT

# measured / floor: min, median, max over 16 cases on a busy 2-core CPU host (benchmarks/predictor_error.py,
# docs/bench.md); the small and depthwise-heavy students (tiny3d, X3D) run furthest above their floor
RATIO = (5.5, 8.0, 23.0)

FUSED = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "ReLU", "ReLU6", "Hardswish", "Hardsigmoid", "SiLU", "GELU",
         "Sigmoid", "Dropout", "Identity", "Flatten", "LayerNorm", "GroupNorm")


@dataclass
class Layer:
    name: str
    kind: str          # module class name
    flops: float
    bytes: float
    ms: float          # estimated time of this layer


@dataclass
class Estimate:
    p50_ms: float      # the estimate: floor x RATIO[1]
    low_ms: float      # band: floor x RATIO[0]
    high_ms: float     #       floor x RATIO[2]
    floor_ms: float    # sum of the per-layer roofline times + launches
    kernels: int
    compute_ms: float  # sum of the layers' FLOP-bound times
    memory_ms: float   # sum of the layers' byte-bound times
    launch_ms: float   # kernels x kernel_launch_us

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def layers(model, input_shape: tuple[int, ...], precision: str = "fp32") -> list[tuple[str, str, float, float]]:
    """(name, kind, FLOPs, bytes) per kernel-bearing leaf module for one forward pass on `input_shape`."""
    from edgekd.bench.roofline import counted_forward, numel

    elem = BYTES_PER_ELEMENT[precision]
    model = model.eval()
    moved: dict[str, float] = {}
    leaves = {name: m for name, m in model.named_modules() if not list(m.children()) and name}

    def hook(name: str):
        def run(module, inputs, output):
            weights = sum(q.numel() for q in module.parameters(recurse=False))
            moved[name] = moved.get(name, 0.0) + elem * (numel(inputs) + numel(output) + weights)
        return run

    counter = counted_forward(model, input_shape, {m: hook(n) for n, m in leaves.items()
                                                    if type(m).__name__ not in FUSED})
    root = type(model).__name__ + "."  # FlopCounterMode names modules "<Class>.<path>"
    flops = {name[len(root):]: float(sum(ops.values())) for name, ops in counter.get_flop_counts().items()
             if name.startswith(root)}
    return [(n, type(leaves[n]).__name__, flops.get(n, 0.0), b) for n, b in moved.items()]


def predict_model(model, input_shape: tuple[int, ...], profile, precision: str = "fp32") -> Estimate:
    """The per-layer estimate of one forward pass on `profile`'s hardware."""
    import copy

    peak, bw, launch = profile.peak_flops(precision), profile.bandwidth_bytes, profile.kernel_launch_us * 1e-3
    compute = memory = total = 0.0
    rows = layers(copy.deepcopy(model), input_shape, precision)
    for _, _, f, b in rows:
        c, m = 1e3 * f / peak, 1e3 * b / bw
        compute, memory = compute + c, memory + m
        total += max(c, m) + launch
    return Estimate(p50_ms=total * RATIO[1], low_ms=total * RATIO[0], high_ms=total * RATIO[2], floor_ms=total,
                    kernels=len(rows),
                    compute_ms=compute, memory_ms=memory, launch_ms=len(rows) * launch)
