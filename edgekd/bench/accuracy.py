"""Accuracy on the artifact itself: every runtime/precision classifies the same decoded eval clips.

    top-1 / top-5   against the dataset's labels (one centre clip per eval video)
    agreement       fraction of clips whose top-1 equals the PyTorch fp32 model's top-1

The clips are decoded once (edgekd.data.ClipDataset, mode="eval") and reused by every runner, so
differences between rows come from the runtimes, not from sampling. The dataset's class names are
mapped onto the model's by name: a class the model does not know is an error, not a silent mislabel.
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekd.errors import BenchError, DataError


@dataclass
class EvalSet:
    x: np.ndarray              # (N, 3, T, S, S) float32, normalized with the model's spec
    labels: np.ndarray         # (N,) int64 in the MODEL's class indices
    source: str                # dataset path or "embedded synthetic dataset"
    split: str
    note: str
    dataset: Any               # the ClipDataset the clips came from (end-to-end timing re-decodes from it)

    def __len__(self) -> int:
        return len(self.x)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "split": self.split, "clips": len(self),
                **({"note": self.note} if self.note else {})}


def class_mapping(dataset_classes: list[str], model_classes: list[str], where: str) -> np.ndarray:
    """Index array: dataset label -> model class index. Unknown classes raise DataError."""
    index = {c: i for i, c in enumerate(model_classes)}
    unknown = [c for c in dataset_classes if c not in index]
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:8]) + (" ..." if len(unknown) > 8 else "")
        raise DataError(f"{where}: {len(unknown)} class(es) the model does not know: {shown}",
                        f"the model knows {len(model_classes)} classes ({', '.join(model_classes[:5])}"
                        f"{', ...' if len(model_classes) > 5 else ''}); pass the dataset it was trained on "
                        "with --eval-data")
    return np.array([index[c] for c in dataset_classes], dtype=np.int64)


def check_input_shape(declared: list[Any] | tuple[Any, ...], spec, where: str) -> None:
    """The artifact's input (batch, 3, T, S, S) must match the data spec's clips (batch may be symbolic)."""
    want = list(spec.input_shape(1))[1:]
    got = list(declared)[1:]

    def same(a: Any, b: int) -> bool:
        return not isinstance(a, int) or a <= 0 or a == b  # symbolic or dynamic dims accept anything

    if len(declared) != 5 or not all(same(a, b) for a, b in zip(got, want)):
        raise BenchError(f"{where} expects input {list(declared)} but the data spec gives clips "
                         f"(batch, {', '.join(map(str, want))}) (frames={spec.frames}, size={spec.size})",
                         "re-export the run (`edgekd export RUN --force`) or bench the export that belongs to it")


def load_eval_set(data: str | Path | None, spec, *, split: str = "test", limit: int | None = None,
                  progress=None, num_workers: int = 0) -> EvalSet:
    """Decode one eval clip per labeled video of `split` (falls back to all videos if none)."""
    from edgekd.data.dataset import ClipDataset, make_loader
    from edgekd.data.manifest import Manifest, load_dataset

    manifest = load_dataset(data)
    source = str(data) if data is not None else "embedded synthetic dataset"
    mapping = class_mapping(list(manifest.class_names), list(spec.class_names), source)
    part, note = manifest.split(split), ""
    entries = [e for e in part.entries if e.label is not None]
    if not entries:
        entries = [e for e in manifest.entries if e.label is not None]
        note = f"no labeled {split!r} videos; evaluated on all {len(entries)} labeled videos"
        split = "all"
    if not entries:
        raise DataError(f"{source}: no labeled videos to evaluate on", "pass a labeled dataset with --eval-data")
    if limit is not None and limit < len(entries):
        # every k-th video keeps the class balance of the split
        step = len(entries) / limit
        entries = [entries[int(i * step)] for i in range(limit)]
    sub = Manifest(root=manifest.root, class_names=list(manifest.class_names), entries=entries)
    dataset = ClipDataset(sub, spec, mode="eval")
    loader = make_loader(dataset, batch_size=8, shuffle=False, num_workers=num_workers)
    xs, ys = [], []
    with (progress.bar(f"decoding {split} clips", len(entries), "clips") if progress else nullcontext(None)) as advance:
        for batch in loader:
            xs.append(batch["video"].numpy().astype(np.float32, copy=False))
            ys.append(batch["label"].numpy().astype(np.int64))
            if advance is not None:
                advance(len(ys[-1]))
    if not xs:
        raise DataError(f"{source}: none of the {len(entries)} {split} videos decoded",
                        "check the videos with `edgekd data check`")
    x = np.concatenate(xs)
    if x.shape[1:] != tuple(spec.input_shape(1)[1:]):
        raise BenchError(f"{source}: decoded clips are {x.shape[1:]}, the model expects {spec.input_shape(1)[1:]}")
    return EvalSet(x=x, labels=mapping[np.concatenate(ys)], source=source, split=split, note=note, dataset=dataset)


@dataclass
class AccuracyResult:
    n: int
    top1: float
    top5: float
    k: int                      # the "5" of top-5 (fewer when the model has < 5 classes)
    agreement: float | None     # top-1 agreement with PyTorch fp32; None without a checkpoint

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def predict(runner, x: np.ndarray, batch_size: int = 1, advance: Callable[[int], None] | None = None) -> np.ndarray:
    """Logits (N, C) for all clips, `batch_size` at a time (the last batch may be smaller)."""
    out = []
    for i in range(0, len(x), batch_size):
        out.append(np.asarray(runner.run(x[i:i + batch_size]), dtype=np.float32))
        if advance is not None:
            advance(len(out[-1]))
    return np.concatenate(out)


def score(logits: np.ndarray, labels: np.ndarray, reference_top1: np.ndarray | None) -> AccuracyResult:
    pred = logits.argmax(1)
    agreement = float((pred == reference_top1).mean()) if reference_top1 is not None else None
    return AccuracyResult(n=int(len(labels)), top1=float((pred == labels).mean()),
                          top5=topk_accuracy(logits, labels, 5), k=min(5, logits.shape[1]), agreement=agreement)
