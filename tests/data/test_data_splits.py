"""Semi-supervised splits: balanced, seeded, identical on every run, readable and reloadable."""

import dataclasses
import random
from collections import Counter
from pathlib import Path

import pytest

from edgekd.data.manifest import Manifest, VideoEntry
from edgekd.data.splits import SemiSplit, make_split
from edgekd.errors import ConfigError, DataError


def _manifest(per_class=(40, 25, 3, 1), test_each=2) -> Manifest:
    entries = []
    for c, n in enumerate(per_class):
        entries += [VideoEntry(Path(f"/d/c{c}/v{k}.avi"), c, "train", None, f"c{c}/v{k}.avi") for k in range(n)]
        entries += [VideoEntry(Path(f"/d/c{c}/t{k}.avi"), c, "test", None, f"c{c}/t{k}.avi") for k in range(test_each)]
    return Manifest(Path("/d"), [f"c{c}" for c in range(len(per_class))], entries)


def _per_class(m: Manifest, ids) -> Counter:
    by_id = m.by_id()
    return Counter(by_id[v].label for v in ids)


def test_fraction_is_class_balanced_and_keeps_one_per_class():
    m = _manifest()
    s = make_split(m, labeled_fraction=0.1, seed=0)
    assert _per_class(m, s.labeled) == {0: 4, 1: 2, 2: 1, 3: 1}  # round(0.1 n), at least 1
    assert len(s.labeled) + len(s.unlabeled) == 69                # every train video, once
    assert not set(s.labeled) & set(s.unlabeled)
    assert all(v.split("/")[1].startswith("v") for v in s.labeled + s.unlabeled)  # no test video


def test_per_class_count():
    m = _manifest()
    s = make_split(m, labeled_per_class=3, seed=1)
    assert _per_class(m, s.labeled) == {0: 3, 1: 3, 2: 3, 3: 1}


def test_identical_every_run_and_independent_of_file_order():
    m = _manifest()
    a = make_split(m, labeled_fraction=0.05, seed=7)
    shuffled = dataclasses.replace(m, entries=random.Random(0).sample(m.entries, len(m.entries)))
    b = make_split(shuffled, labeled_fraction=0.05, seed=7)
    assert set(a.labeled) == set(b.labeled) and a.labeled == make_split(m, labeled_fraction=0.05, seed=7).labeled
    assert set(make_split(m, labeled_fraction=0.05, seed=8).labeled) != set(a.labeled)


def test_file_round_trip_is_human_readable(tmp_path):
    m = _manifest()
    s = make_split(m, labeled_fraction=0.1, seed=3)
    path = s.save(tmp_path / "labeled_10pct.txt")
    text = path.read_text()
    assert "[labeled]\nc0/" in text and "[unlabeled]" in text and "labeled_fraction 0.1" in text
    back = SemiSplit.load(path)
    assert back.labeled == s.labeled and back.unlabeled == s.unlabeled
    assert back.meta["seed"] == "3" and back.meta["dataset"] == m.fingerprint()


def test_apply_hides_unlabeled_labels():
    m = _manifest()
    labeled, unlabeled = make_split(m, labeled_per_class=2).apply(m)
    assert len(labeled) == 7 and all(e.label is not None for e in labeled.entries)
    assert len(unlabeled) == 62 and all(e.label is None for e in unlabeled.entries)
    _, visible = make_split(m, labeled_per_class=2).apply(m, hide_labels=False)
    assert all(e.label is not None for e in visible.entries)


def test_apply_to_another_dataset_fails(tmp_path):
    path = make_split(_manifest(), labeled_per_class=1).save(tmp_path / "s.txt")
    with pytest.raises(DataError, match=r"s\.txt names .* not in the dataset"):
        SemiSplit.load(path).apply(_manifest(per_class=(2, 2)))


@pytest.mark.parametrize("kwargs", [{"labeled_fraction": 0.0}, {"labeled_fraction": 1.5},
                                    {"labeled_fraction": -0.1}, {"labeled_per_class": 0}, {},
                                    {"labeled_fraction": 0.1, "labeled_per_class": 2}])
def test_bad_amounts_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        make_split(_manifest(), **kwargs)


def test_fraction_one_labels_everything():
    s = make_split(_manifest(), labeled_fraction=1.0)
    assert not s.unlabeled and len(s.labeled) == 69


def test_malformed_split_files_name_the_line(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("# comment\nc0/v1.avi\n[labeled]\n")
    with pytest.raises(DataError, match=r"s\.txt:2: video id 'c0/v1\.avi' before any"):
        SemiSplit.load(f)
    f.write_text("[labeled]\na\n[holdout]\nb\n")
    with pytest.raises(DataError, match=r"s\.txt:3: unknown section"):
        SemiSplit.load(f)
    with pytest.raises(DataError, match="does not exist"):
        SemiSplit.load(tmp_path / "none.txt")
