"""The one metrics function against an independent computation written the slow, obvious way."""

import math

import numpy as np
import pytest

from edgekd.runtime.metrics import agreement, classification, video_scores


def _by_hand(view_logits, labels, k):
    """Per video: exp/sum softmax of each view with math.exp, averaged; rank the classes with sorted()."""
    top1 = topk = 0
    confusion = [[0] * len(view_logits[0][0]) for _ in view_logits[0][0]]
    for views, y in zip(view_logits, labels):
        probs = []
        for z in views:
            e = [math.exp(v - max(z)) for v in z]
            probs.append([v / sum(e) for v in e])
        avg = [sum(p[c] for p in probs) / len(probs) for c in range(len(probs[0]))]
        ranked = sorted(range(len(avg)), key=lambda c: (-avg[c], c))
        top1 += ranked[0] == y
        topk += y in ranked[:k]
        confusion[y][ranked[0]] += 1
    return top1 / len(labels), topk / len(labels), confusion


@pytest.fixture
def case():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((40, 3, 7)).astype(np.float32) * 2   # 40 videos x 3 views x 7 classes
    labels = rng.integers(0, 7, 40)
    return logits, labels


def test_top1_top5_and_multiview_average_match_a_hand_computation(case):
    logits, labels = case
    m = classification(video_scores(logits), labels)
    top1, top5, confusion = _by_hand(logits.tolist(), labels.tolist(), 5)
    assert top1 != top5  # the case tells top-1 from top-5 apart
    assert m["top1"] == pytest.approx(top1) and m["top5"] == pytest.approx(top5) and m["k"] == 5
    assert m["confusion"] == confusion and m["n"] == 40
    # the multi-view average is of softmaxes, not of logits: they pick different classes here
    assert not np.array_equal(video_scores(logits).argmax(1), logits.mean(1).argmax(1))


def test_single_view_k_capped_and_unlabeled_ignored():
    scores = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    m = classification(scores, np.array([1, 2, -1]))
    assert m["n"] == 2 and m["top1"] == 0.5 and m["k"] == 3 and m["top5"] == 1.0
    assert m["per_class"]["1"] == {"accuracy": 1.0, "videos": 1} and m["per_class"]["0"]["videos"] == 0
    assert classification(scores, np.array([-1, -1, -1]))["top1"] is None
    assert agreement(scores, scores[:, ::-1]) == pytest.approx(1 / 3)
