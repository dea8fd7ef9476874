"""The one accuracy function: every top-1/top-5/confusion figure edgekd prints comes from here.

    video_scores(logits)            (N, C) or (N, V, C) logits -> (N, C) class scores: the softmax of
                                    each view averaged over the V views of a video (TimeBalance Sec. 4.2)
    classification(scores, labels)  top-1, top-k (k = min(5, C)), per-class accuracy, confusion matrix
    agreement(a, b)                 fraction of rows whose top-1 class is the same

Numpy only, so training (torch tensors), export (ONNX Runtime outputs) and bench (any runner) share it.
Labels < 0 mean "unlabeled" and are left out of every figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def video_scores(logits: np.ndarray) -> np.ndarray:
    """(N, C) logits pass through as softmax; (N, V, C) views are softmaxed, then averaged over V."""
    p = softmax(logits)
    return p.mean(1) if p.ndim == 3 else p


def topk_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(N,) bool: the label is among the k highest scores (ties broken by the lower class index)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return (order == labels[:, None]).any(axis=1)


def classification(scores: np.ndarray, labels: np.ndarray, class_names: list[str] | None = None,
                   k: int = 5) -> dict[str, Any]:
    """top-1, top-k (k = min(k, C)), per-class accuracy and the confusion matrix (rows: truth)."""
    scores = np.asarray(scores)
    labels = np.asarray(labels, dtype=np.int64)
    keep = labels >= 0
    scores, labels = scores[keep], labels[keep]
    C = scores.shape[1] if scores.ndim == 2 and scores.shape[1] else len(class_names or [])
    names = list(class_names) if class_names is not None else [str(c) for c in range(C)]
    k = max(1, min(k, C))
    if len(labels) == 0:
        return {"top1": None, "top5": None, "k": k, "n": 0, "per_class": {}, "confusion": []}
    pred = scores.argmax(1)                                   # ties: the lower index, as in topk_hits
    confusion = np.zeros((C, C), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    per_class = {}
    for c, name in enumerate(names):
        total = int(confusion[c].sum())
        per_class[name] = {"accuracy": float(confusion[c, c]) / total if total else None, "videos": total}
    return {"top1": float((pred == labels).mean()), "top5": float(topk_hits(scores, labels, k).mean()), "k": k,
            "n": int(len(labels)), "per_class": per_class, "confusion": confusion.tolist()}


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows of two (N, C) score arrays with the same top-1 class."""
    return float((np.asarray(a).argmax(1) == np.asarray(b).argmax(1)).mean()) if len(a) else 1.0
