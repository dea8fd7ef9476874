"""Every exported artifact proves itself against PyTorch on the same real clips.

Inputs are decoded clips from the dataset's eval split (edgekd.runtime.evalset, normalized exactly
as training saw them) plus a few random-noise inputs that probe the whole input range. Both go
through two runners (edgekd.runtime.runners): the PyTorch reference and the artifact (ONNX Runtime
FP32/INT8 or a TensorRT engine); the logits are compared:

    max_abs, mean_abs   |logit_ref - logit_art|
    cosine_min/mean     cosine similarity of each sample's logit vectors
    top1_agreement      fraction of samples whose argmax agrees

A `Tolerance` per precision decides pass/fail; failing raises ExportError with the figures. The
abs bound scales with the logits (atol + rtol * max|ref|). Where max_abs is within bound, a top-1
flip can only be a near tie, so FP32 gates on abs + cosine; quantized artifacts gate on cosine and
top-1 agreement on real clips (noise lies outside the calibrated ranges, so it is reported, not gated).
The reference itself must vary across inputs (`check_reference`), or parity would prove nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekd.errors import ExportError


@dataclass(frozen=True)
class Tolerance:
    atol: float | None          # max |diff| <= atol + rtol * max|ref|   (None: not gated)
    rtol: float
    min_cosine: float           # every sample's cosine (min) must reach this
    min_top1: float             # top-1 agreement on real clips
    gate_noise: bool            # also gate the random-noise inputs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Defaults per artifact precision; recorded in artifact.json next to the figures they judged.
TOLERANCES: dict[str, Tolerance] = {
    # Same arithmetic, different kernels: only summation-order noise.
    "fp32": Tolerance(atol=1e-4, rtol=1e-3, min_cosine=0.9999, min_top1=0.0, gate_noise=True),
    # TensorRT FP16: 10-bit mantissa through the whole network.
    "fp16": Tolerance(atol=5e-2, rtol=2e-2, min_cosine=0.999, min_top1=0.9, gate_noise=True),
    # 8-bit activations/weights: ranges calibrated on clips, so judge on clips.
    "int8": Tolerance(atol=None, rtol=0.0, min_cosine=0.95, min_top1=0.8, gate_noise=False),
}


def tolerances(atol: float | None = None, int8_min_agreement: float | None = None,
               int8_min_cosine: float | None = None) -> dict[str, Tolerance]:
    """The overrides a user asked for (`--atol`, `--int8-min-agreement`, `--int8-min-cosine`)."""
    out = {}
    if atol is not None:
        out["fp32"] = dataclasses.replace(TOLERANCES["fp32"], atol=atol)
    if int8_min_agreement is not None or int8_min_cosine is not None:
        t = TOLERANCES["int8"]
        out["int8"] = dataclasses.replace(
            t, min_top1=t.min_top1 if int8_min_agreement is None else int8_min_agreement,
            min_cosine=t.min_cosine if int8_min_cosine is None else int8_min_cosine)
    return out


def noise_inputs(spec, n: int, seed: int = 0) -> np.ndarray:
    """(n, 3, T, S, S) standard-normal inputs: the range a normalized clip spans, and beyond."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *spec.input_shape(1)[1:]), dtype=np.float32)


# A reference whose logits barely move across inputs cannot tell a working graph from one that
# outputs a constant (MobileNet-TSM with untrained BatchNorm statistics varies by 3e-10).
MIN_SPREAD_REL = 1e-3   # largest per-class std across inputs, relative to max |logit|
MIN_SPREAD_ABS = 1e-6


def spread(ref: np.ndarray) -> float:
    """The largest per-class standard deviation of the logits across inputs."""
    return float(np.asarray(ref, np.float64).std(axis=0).max()) if len(ref) > 1 else 0.0


def check_reference(ref: np.ndarray, where: str) -> None:
    """Refuse a degenerate reference: parity against it would pass a constant-output graph."""
    s, scale = spread(ref), float(np.abs(ref).max()) if ref.size else 0.0
    if len(ref) < 2 or s < max(MIN_SPREAD_ABS, MIN_SPREAD_REL * scale):
        raise ExportError(f"{where}: the reference logits hardly vary across the {len(ref)} parity inputs "
                          f"(spread {s:.2e}, scale {scale:.2e}), so parity could not tell the export from a "
                          "constant output",
                          "export a trained checkpoint (an untrained student, or one with untrained BatchNorm "
                          "statistics, gives near-constant logits); pass --parity-clips 8 or more")


class Comparator:
    """Parity as a comparator over two runners (Polygraphy's shape): the reference runs once on the
    clips and the noise inputs; each artifact runner is judged against those outputs."""

    def __init__(self, reference, clips: np.ndarray, noise: np.ndarray, batch_size: int = 8):
        from edgekd.runtime.runners import logits

        self.reference, self.clips, self.noise, self.batch_size = reference, clips, noise, batch_size
        self.ref_clips, self.ref_noise = logits(reference, clips, batch_size), logits(reference, noise, batch_size)
        check_reference(np.concatenate([self.ref_clips, self.ref_noise]), f"{reference.name} {reference.precision}")

    def judge(self, runner, name: str, tol: "Tolerance", *, raise_on_fail: bool = True) -> dict[str, Any]:
        from edgekd.runtime.runners import logits

        batch = self.batch_size
        inp = getattr(runner, "input_shape", None)
        if inp and isinstance(inp[0], int) and inp[0] > 0:  # a static-batch model takes exactly that many
            batch = inp[0]
        out_clips, out_noise = logits(runner, self.clips, batch), logits(runner, self.noise, batch)
        result = judge(name, self.ref_clips, out_clips, self.ref_noise, out_noise, tol, raise_on_fail=raise_on_fail)
        result["reference"] = f"{self.reference.name} {self.reference.precision}"
        result["reference_spread"] = spread(np.concatenate([self.ref_clips, self.ref_noise]))
        return result


def compare(ref: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """Figures for two (N, C) logit arrays."""
    if ref.shape != out.shape:
        raise ExportError(f"artifact output shape {out.shape} != PyTorch output shape {ref.shape}",
                          "the exported graph is broken; re-export with --force")
    diff = np.abs(ref.astype(np.float64) - out.astype(np.float64))
    a, b = ref.astype(np.float64), out.astype(np.float64)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {
        "n": int(len(ref)),
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "mean_abs": float(diff.mean()) if diff.size else 0.0,
        "ref_max_abs": float(np.abs(a).max()) if a.size else 0.0,
        "cosine_min": float(cos.min()) if cos.size else 1.0,
        "cosine_mean": float(cos.mean()) if cos.size else 1.0,
        "top1_agreement": float((ref.argmax(1) == out.argmax(1)).mean()) if len(ref) else 1.0,
        "finite": bool(np.isfinite(out).all()),
    }


def _failures(fig: dict[str, float], tol: Tolerance, label: str, gate_top1: bool) -> list[str]:
    bad = []
    if not fig["finite"]:
        bad.append(f"{label}: non-finite outputs")
    if tol.atol is not None:
        bound = tol.atol + tol.rtol * fig["ref_max_abs"]
        if fig["max_abs"] > bound:
            bad.append(f"{label}: max |diff| {fig['max_abs']:.3g} > {bound:.3g}")
    if fig["cosine_min"] < tol.min_cosine:
        bad.append(f"{label}: cosine {fig['cosine_min']:.5f} < {tol.min_cosine}")
    if gate_top1 and fig["top1_agreement"] < tol.min_top1:
        bad.append(f"{label}: top-1 agreement {fig['top1_agreement']:.3f} < {tol.min_top1}")
    return bad


def judge(name: str, ref_clips: np.ndarray, out_clips: np.ndarray, ref_noise: np.ndarray,
          out_noise: np.ndarray, tol: Tolerance, *, raise_on_fail: bool = True) -> dict[str, Any]:
    """Compare an artifact with PyTorch on clips and on noise; the parity block of artifact.json."""
    clips = compare(ref_clips, out_clips)
    noise = compare(ref_noise, out_noise) if len(ref_noise) else None
    failures = _failures(clips, tol, "clips", gate_top1=True)
    if noise is not None and tol.gate_noise:
        failures += _failures(noise, tol, "noise", gate_top1=False)
    result = {"reference": "pytorch-cpu-fp32", "clips": clips, "noise": noise,
              "tolerance": tol.to_dict(), "passed": not failures, "failures": failures}
    if failures and raise_on_fail:
        raise ExportError(f"{name} does not match PyTorch: " + "; ".join(failures),
                          "loosen the tolerance only if the difference is expected "
                          "(e.g. --int8-min-agreement), otherwise report the student and opset")
    return result
