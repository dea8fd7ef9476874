"""torchvision's video ResNets (Tran et al., "A Closer Look at Spatiotemporal Convolutions", CVPR 2018).

    r3d_18       every conv 3x3x3
    mc3_18       3x3x3 in the stem and layer1, 1x3x3 (2D) afterwards ("mixed convolutions")
    r2plus1d_18  every 3x3x3 factorised into 1x3x3 spatial + 3x1x1 temporal (R(2+1)D)

The torchvision network is kept as is (same parameter names under stem/layer1..4, so torchvision
weights load into it); only its avgpool+fc is replaced by the shared student head, and the pooling
is split so the time axis survives until forward_features:

    x                      (B, 3,   T,   H,    W)      e.g. (B, 3, 8, 112, 112)
    stem   s(1,2,2)        (B, 64,  T,   H/2,  W/2)
    layer1                 (B, 64,  T,   H/2,  W/2)
    layer2 s(2,2,2)        (B, 128, T/2, H/4,  W/4)
    layer3 s(2,2,2)        (B, 256, T/4, H/8,  W/8)
    layer4 s(2,2,2)        (B, 512, T/8, H/16, W/16)
    mean over H, W         (B, T/8, 512)                forward_temporal
    mean over T'           (B, 512)                     forward_features
    dropout + Linear       (B, num_classes)             forward_head

Options: `depth` = residual blocks per stage (2 gives the -18 networks), `dropout` before the
classifier. Weights start random: nothing is downloaded.

Cost measured with torch.utils.flop_counter.FlopCounterMode, one clip, 101 classes; GMACs are
multiply-accumulates (the papers' "GFLOPs"; FlopCounterMode reports twice this):
    r3d_18       16x112x112   33.2M params   40.7 GMACs
    mc3_18       16x112x112   11.5M params   43.3 GMACs
    r2plus1d_18  16x112x112   31.3M params   40.5 GMACs
"""

from __future__ import annotations

import torch

from edgekd.compat.torchvision import import_torchvision
from edgekd.students.base import STUDENTS, Student, check_option, check_scaling

tv = import_torchvision()
R = tv.models.video.resnet

# name -> (stem, conv maker per stage); the same recipe torchvision's r3d_18/mc3_18/r2plus1d_18 use
RECIPES = {
    "r3d_18": (R.BasicStem, [R.Conv3DSimple] * 4),
    "mc3_18": (R.BasicStem, [R.Conv3DSimple] + [R.Conv3DNoTemporal] * 3),
    "r2plus1d_18": (R.R2Plus1dStem, [R.Conv2Plus1D] * 4),
}


class VideoResNetStudent(Student):
    def __init__(self, recipe: str, num_classes: int, depth: int = 2, dropout: float = 0.0):
        super().__init__()
        stem, conv_makers = RECIPES[recipe]
        net = R.VideoResNet(R.BasicBlock, conv_makers, [depth] * 4, stem)
        self.stem, self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.stem, net.layer1, net.layer2, net.layer3, net.layer4)
        self.init_head(512, num_classes, dropout)

    def forward_temporal(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)                             # (B, 64, T, H/2, W/2)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, T', H', W')
        return x.mean(dim=(3, 4)).transpose(1, 2)   # (B, T', 512)


def _factory(recipe: str):
    def build(num_classes: int, frames: int, size: int, depth: int = 2,
              dropout: float = 0.0) -> VideoResNetStudent:
        check_scaling(recipe, 1.0, depth, dropout)
        check_option(recipe, "depth", depth, isinstance(depth, int), "an integer >= 1")
        return VideoResNetStudent(recipe, num_classes, depth=depth, dropout=dropout)

    build.__name__ = recipe
    return build


for _name in RECIPES:
    STUDENTS.register(_name)(_factory(_name))
