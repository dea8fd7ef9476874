"""Video data: manifests for every dataset layout, semi-supervised splits, decoding, clip sampling,
transforms, the clip dataset/loader and the embedded synthetic dataset.

    spec        DataSpec: what a model expects as input (frames, size, mean/std, class names)
    manifest    Manifest, VideoEntry, SkippedVideos; load_dataset picks the reader for a path
    layouts     one reader per layout: folder-per-class, UCF101, HMDB51, CSV, Kinetics CSV
    splits      semi-supervised splits: which training videos keep their label
    inspect     probe every video of a manifest (`edgekd data inspect`)
    decode      decord / PyAV decoding, resized at decode
    sampling    where clips start in time and where crops sit in space
    transforms  uint8 frames -> uint8 clip + its colour transform
    dataset     ClipDataset and make_loader (torch)
    encode      write uint8 frames as a real video file
    synthetic   the embedded synthetic action dataset, generated once into edgekd_home()
    fixtures    UCF101/HMDB51-format datasets with broken files, for tests and benchmarks

Import the pieces from their modules (`edgekd.data.dataset` pulls in torch; `manifest` and `splits`
do not). The names below are the torch-free entry points.
"""

from edgekd.data.manifest import Manifest, VideoEntry, default_data_spec, load_dataset
from edgekd.data.splits import SemiSplit, make_split

__all__ = ["Manifest", "VideoEntry", "default_data_spec", "load_dataset", "SemiSplit", "make_split"]
