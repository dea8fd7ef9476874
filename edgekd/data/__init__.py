"""Video data: manifests for every dataset layout, semi-supervised splits, decoding, clip sampling,
transforms, the clip dataset/loader and the embedded synthetic dataset.

Import the pieces from their modules (`edgekd.data.dataset` pulls in torch; `manifest` and `splits`
do not). The names below are the torch-free entry points.
"""

from edgekd.data.manifest import Manifest, VideoEntry, default_data_spec, load_dataset
from edgekd.data.splits import SemiSplit, make_split

__all__ = ["Manifest", "VideoEntry", "default_data_spec", "load_dataset", "SemiSplit", "make_split"]
