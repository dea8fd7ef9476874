"""The one clip set: export's and bench's evaluation clips are exactly the clips training evaluates on."""

import numpy as np

from edgekd.data.manifest import Manifest, default_data_spec
from edgekd.distill.config import load_config
from edgekd.distill.data import eval_loader
from edgekd.runtime.evalset import build_evalset


def test_evalset_clips_equal_the_training_eval_loaders(tiny_synth):
    manifest = Manifest.load(tiny_synth)
    spec = default_data_spec(manifest)
    test = manifest.split("test")
    batches = list(eval_loader(load_config(None, []), test, spec, workers=0))
    by_video = {}
    for b in batches:
        for i, clip in zip(b["index"].tolist(), b["video"].numpy()):
            by_video[str(test.entries[i].path)] = clip
    es = build_evalset(str(tiny_synth), spec)
    paths = [str(e.path) for e in es.dataset.manifest.entries]
    assert sorted(paths) == sorted(by_video)
    for path, clip in zip(paths, es.x):
        np.testing.assert_array_equal(clip, by_video[path])  # same decode size, crop and normalization
