"""Every exported artifact proves itself against PyTorch on the same real clips.

Inputs are decoded clips from the dataset's eval split (normalized exactly as training saw them)
plus a few random-noise inputs that probe the whole input range. Both go through the PyTorch model
and the artifact (ONNX Runtime session, INT8 model or TensorRT engine); the logits are compared:

    max_abs, mean_abs   |logit_ref - logit_art|
    cosine_min/mean     cosine similarity of each sample's logit vectors
    top1_agreement      fraction of samples whose argmax agrees

A `Tolerance` per precision decides pass/fail; failing raises ExportError with the figures. The
abs bound scales with the logits (atol + rtol * max|ref|). Where max_abs is within bound, a top-1
flip can only be a near tie, so FP32 gates on abs + cosine; quantized artifacts gate on cosine and
top-1 agreement on real clips (noise lies outside the calibrated ranges, so it is reported, not gated).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekd.errors import DataError, ExportError


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


@dataclass
class Clips:
    """Decoded, normalized clips from one split of a dataset."""

    x: np.ndarray            # (N, 3, T, S, S) float32
    labels: np.ndarray       # (N,) int64, -1 where unlabeled
    source: str              # dataset path, or "embedded synthetic dataset"
    split: str
    labels_match: bool       # the dataset's classes are the checkpoint's classes (accuracy is meaningful)
    note: str = ""           # why a fallback was used, if one was

    def __len__(self) -> int:
        return len(self.x)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "split": self.split, "clips": len(self), "labels_match": self.labels_match,
                **({"note": self.note} if self.note else {})}


def _spread(entries: list, limit: int) -> list:
    """Round-robin over labels so a small subset covers every class."""
    by_label: dict[Any, list] = {}
    for e in entries:
        by_label.setdefault(e.label, []).append(e)
    queues = [list(v) for _, v in sorted(by_label.items(), key=lambda kv: (kv[0] is None, kv[0] if kv[0] is not None else 0))]
    out: list = []
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


def open_dataset(data: str | Path | None):
    """(manifest, source, note): the run's dataset, or the embedded synthetic one when it is unavailable."""
    from edgekd.data.manifest import load_dataset

    if data is not None:
        try:
            return load_dataset(data), str(data), ""
        except DataError as e:
            note = f"dataset {data} unavailable ({e.message}); used the embedded synthetic dataset"
    else:
        note = "the checkpoint names no dataset; used the embedded synthetic dataset"
    return load_dataset(None), "embedded synthetic dataset", note


def load_clips(spec, manifest, *, split: str, limit: int, source: str, note: str = "",
               reporter=None, batch_size: int = 8, fallback_split: str | None = None) -> Clips:
    """Decode up to `limit` eval-mode clips (center clip of each video) from `split`."""
    from edgekd.data.dataset import ClipDataset, make_loader
    from edgekd.data.manifest import Manifest

    part = manifest.split(split)
    if not part.entries and fallback_split:
        note = (note + "; " if note else "") + f"no {split!r} split, used {fallback_split!r}"
        split, part = fallback_split, manifest.split(fallback_split)
    if not part.entries:
        raise DataError(f"{source}: split {split!r} has no videos", "export needs a few clips for parity; check the dataset")
    chosen = _spread(part.entries, limit)
    sub = Manifest(root=part.root, class_names=list(part.class_names), entries=chosen)
    dataset = ClipDataset(sub, spec, mode="eval")
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    xs, ys = [], []
    from edgekd.export.ui import Reporter

    reporter = reporter or Reporter(quiet=True)
    with reporter.bar(f"decoding {split} clips", len(chosen)) as bar:
        for batch in loader:
            xs.append(batch["video"].numpy().astype(np.float32))
            ys.append(batch["label"].numpy().astype(np.int64))
            bar.advance(len(batch["label"]))
    if not xs:
        raise DataError(f"{source}: none of the {len(chosen)} {split} videos decoded",
                        "check the videos with `edgekd data check`")
    labels_match = list(manifest.class_names) == list(spec.class_names)
    return Clips(np.concatenate(xs), np.concatenate(ys), source, split, labels_match, note)


def noise_inputs(spec, n: int, seed: int = 0) -> np.ndarray:
    """(n, 3, T, S, S) standard-normal inputs: the range a normalized clip spans, and beyond."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *spec.input_shape(1)[1:]), dtype=np.float32)


def batched(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]) if len(x) else x


def torch_logits(model, x: np.ndarray, batch_size: int = 8) -> np.ndarray:
    import torch

    model = model.eval()

    def run(b: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(b)).float().numpy()

    return batched(run, x, batch_size)


def ort_session(path: str | Path, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3  # quantized graphs log benign fusion notes
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_logits(path_or_session, x: np.ndarray, batch_size: int = 8) -> np.ndarray:
    sess = path_or_session if hasattr(path_or_session, "run") else ort_session(path_or_session)
    inp = sess.get_inputs()[0]
    if isinstance(inp.shape[0], int):  # a static-batch model takes exactly that many clips per run
        batch_size = inp.shape[0]
    return batched(lambda b: sess.run(None, {inp.name: b})[0], x, batch_size)


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


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float | None:
    mask = labels >= 0
    if not mask.any():
        return None
    return float((logits[mask].argmax(1) == labels[mask]).mean())
