"""The UCF101/HMDB51-format fixtures: their three splits differ, as the real downloads' splits do."""

from collections import Counter
from itertools import combinations

import pytest

from datasets import make_hmdb51, make_ucf101
from edgekd.data.manifest import load_dataset


@pytest.mark.parametrize("make, per_class, train_each", [(make_ucf101, 3, 2), (make_hmdb51, 4, 2)])
def test_each_split_tests_other_videos(tmp_path, make, per_class, train_each):
    split_dir = make(tmp_path, per_class=per_class, frames=8, size=(32, 48), bad=False)
    splits = {n: load_dataset(split_dir, split=n) for n in (1, 2, 3)}
    tests = {n: {e.video_id for e in m.split("test").entries} for n, m in splits.items()}
    for n, m in splits.items():
        per_class_split = Counter((e.label, e.split) for e in m.entries)
        assert per_class_split == {(c, s): k for c in range(3) for s, k in (("test", 1), ("train", train_each))}, n
        assert not tests[n] & {e.video_id for e in m.split("train").entries}
    for a, b in combinations(tests, 2):  # no video is held out twice: three different train/test assignments
        assert not tests[a] & tests[b], (a, b)
