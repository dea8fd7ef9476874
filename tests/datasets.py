"""UCF101- and HMDB51-format datasets as the real downloads unpack, for tests (see edgekd/data/fixtures.py).

    from datasets import make_ucf101, make_hmdb51, bad_videos

- `make_ucf101(root, classes=UCF_CLASSES, per_class=3, frames=24, size=(240, 320), video_dir="UCF-101",
  bad=True, seed=0) -> ROOT/ucfTrainTestlist` (CRLF classInd.txt, trainlist0N.txt, testlist0N.txt;
  MPEG-4 AVI videos under ROOT/<video_dir>/<Class>/).
- `make_hmdb51(root, classes=HMDB_CLASSES, per_class=4, frames=24, size=(240, 320), video_dir="hmdb51",
  bad=True, seed=0) -> ROOT/testTrainMulti_7030_splits` (<class>_test_splitN.txt, markers 0/1/2).
- The three splits differ, as the real ones: UCF101 split N tests group gN; HMDB51 split N shifts the
  markers (1 1 2 0 per class in split 1) by N - 1. Same arguments, same bytes in any process.
- `bad=True`: an empty, a truncated and a non-video file listed as training videos of the first
  class; `bad_videos(split_dir) -> {"empty": Path, "truncated": Path, "not a video": Path}`.
Class k shows synthetic motion k (learnable labels). Use small `frames`/`size` where 320x240 is not the point.
"""

from edgekd.data.fixtures import BAD_KINDS, HMDB_CLASSES, UCF_CLASSES, bad_videos, make_hmdb51, make_ucf101  # noqa: F401
