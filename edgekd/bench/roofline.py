"""Roofline: what the student costs, counted from the model, and how fast a device could run it.

FLOPs are counted by torch.utils.flop_counter.FlopCounterMode on one real forward pass
(convolutions, matmuls and linear layers, 2 FLOPs per multiply-accumulate); int8 "OPs" are the same
count. Bytes moved to and from DRAM follow a simple, stated model of a fused inference engine:

    weights      every parameter and buffer read once, at the precision's element size
                 (fp32 4 B, fp16 2 B, int8 1 B)
    activations  every compute layer (Conv*, Linear, pooling) reads its input and writes its output
                 once; elementwise layers (BatchNorm, activations, dropout) are assumed fused into
                 the layer before them, as TensorRT and ONNX Runtime do, so they move nothing extra

Arithmetic intensity = FLOPs / bytes. The speed-of-light latency on a profile's hardware is

    floor = max(FLOPs / peak[precision], bytes / bandwidth)

(compute-bound or memory-bound, whichever is slower), and efficiency = floor / measured latency.
The floor ignores kernel-launch and framework overheads, so small students sit well below 100 %.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass
class ModelCost:
    """Counted for one clip (batch 1); scale with `at_batch`."""

    flops: float               # FLOPs per clip
    params: int                # parameter + buffer elements (weights read once per batch)
    activation_elements: int   # elements read + written by compute layers per clip
    input_shape: list[int]
    by_operator: dict[str, float]  # FLOPs per aten operator, largest first

    def bytes(self, precision: str, batch: int = 1) -> float:
        e = BYTES_PER_ELEMENT[precision]
        return e * (self.params + batch * self.activation_elements)

    def intensity(self, precision: str, batch: int = 1) -> float:
        return batch * self.flops / self.bytes(precision, batch)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["bytes"] = {p: self.bytes(p) for p in BYTES_PER_ELEMENT}
        d["intensity_flop_per_byte"] = {p: self.intensity(p) for p in BYTES_PER_ELEMENT}
        return d


COMPUTE_LAYERS = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "ConvTranspose3d", "Linear",
                  "MaxPool2d", "MaxPool3d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool2d",
                  "AdaptiveAvgPool3d", "AdaptiveMaxPool3d")



def numel(t: Any) -> int:
    """Elements in a tensor or a (nested) list/tuple of tensors (a forward hook's inputs/outputs)."""
    import torch

    if isinstance(t, torch.Tensor):
        return t.numel()
    return sum(numel(v) for v in t) if isinstance(t, (list, tuple)) else 0


def counted_forward(model, input_shape: tuple[int, ...], hooks: dict):
    """One forward pass of `model` on zeros of `input_shape` under torch's FLOP counter, with forward
    hooks {module: fn} attached for the pass; returns the counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    p = next(model.parameters())
    x = torch.zeros(*input_shape, device=p.device, dtype=p.dtype)
    handles = [m.register_forward_hook(fn) for m, fn in hooks.items()]
    counter = FlopCounterMode(display=False)
    try:
        with torch.inference_mode(), counter:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return counter


def count_cost(model, input_shape: tuple[int, ...]) -> ModelCost:
    """Run one forward pass of `model` on zeros shaped (1, 3, T, H, W) and tally FLOPs and bytes."""
    batch = input_shape[0]
    tally = [0]

    def hook(_module, inputs, output):
        tally[0] += numel(inputs) + numel(output)

    model = model.eval()
    counter = counted_forward(model, input_shape, {m: hook for m in model.modules()
                                                    if type(m).__name__ in COMPUTE_LAYERS and not list(m.children())})
    by_op = {str(k).split(".")[-1] if not hasattr(k, "__name__") else k.__name__: float(v)
             for k, v in counter.get_flop_counts().get("Global", {}).items()}
    params = sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return ModelCost(flops=counter.get_total_flops() / batch, params=params,
                     activation_elements=tally[0] // batch, input_shape=list(input_shape[1:]),
                     by_operator=dict(sorted(by_op.items(), key=lambda kv: -kv[1])))


@dataclass
class Floor:
    precision: str
    batch: int
    floor_ms: float        # speed-of-light latency of one batch on the profile's hardware
    compute_ms: float
    memory_ms: float
    bound: str             # "compute" | "memory"
    intensity: float       # FLOP / byte
    ridge: float           # the device's FLOP/byte where compute and memory time meet

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def floor(cost: ModelCost, profile, precision: str, batch: int = 1) -> Floor:
    """max(FLOPs / peak, bytes / bandwidth) for one batch on `profile`'s hardware."""
    flops = cost.flops * batch
    nbytes = cost.bytes(precision, batch)
    compute = flops / profile.peak_flops(precision)
    memory = nbytes / profile.bandwidth_bytes
    return Floor(precision=precision, batch=batch, floor_ms=1e3 * max(compute, memory), compute_ms=1e3 * compute,
                 memory_ms=1e3 * memory, bound="compute" if compute >= memory else "memory",
                 intensity=flops / nbytes, ridge=profile.peak_flops(precision) / profile.bandwidth_bytes)


def efficiency(floor_ms: float, measured_ms: float) -> float:
    """Fraction of the speed of light achieved (1.0 = at the roofline)."""
    return floor_ms / measured_ms if measured_ms > 0 else float("nan")
