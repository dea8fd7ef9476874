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

Options: `depth` = residual blocks per stage (2 gives the -18 networks), `width` scales every
stage's channels (64-128-256-512 at 1.0; at 1.0 the network is torchvision's own, below it the same
blocks and parameter names with fewer channels, small enough for CPU experiments at 8x64x64),
`dropout` before the classifier. Weights start random: nothing is downloaded.

Cost measured with torch.utils.flop_counter.FlopCounterMode, one clip, 101 classes; GMACs are
multiply-accumulates (the papers' "GFLOPs"; FlopCounterMode reports twice this):
    r3d_18       16x112x112   33.2M params   40.7 GMACs
    mc3_18       16x112x112   11.5M params   43.3 GMACs
    r2plus1d_18  16x112x112   31.3M params   40.5 GMACs
"""

from __future__ import annotations

import torch
from torch import nn

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


def _scaled_stem(recipe: str, width: float, out: int) -> nn.Sequential:
    """torchvision's BasicStem / R2Plus1dStem (same layer order, so the same parameter names) with
    `out` channels (45 mid channels of the (2+1)D stem scaled alike)."""
    if recipe != "r2plus1d_18":
        return nn.Sequential(nn.Conv3d(3, out, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
                             nn.BatchNorm3d(out), nn.ReLU(inplace=True))
    mid = max(4, round(45 * width))
    return nn.Sequential(nn.Conv3d(3, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
                         nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
                         nn.Conv3d(mid, out, (3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
                         nn.BatchNorm3d(out), nn.ReLU(inplace=True))


def _scaled_resnet(recipe: str, depth: int, width: float) -> R.VideoResNet:
    """A VideoResNet with every stage's channels scaled by `width`, built by torchvision's own
    _make_layer (which reads the running `inplanes`) and initialised as its __init__ does."""
    _, conv_makers = RECIPES[recipe]
    planes = [max(4, round(c * width)) for c in (64, 128, 256, 512)]
    net = R.VideoResNet.__new__(R.VideoResNet)
    nn.Module.__init__(net)
    net.inplanes = planes[0]
    net.stem = _scaled_stem(recipe, width, planes[0])
    for i, (maker, p) in enumerate(zip(conv_makers, planes)):
        setattr(net, f"layer{i + 1}", net._make_layer(R.BasicBlock, maker, p, depth, stride=1 if i == 0 else 2))
    for m in net.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    net.feature_dim = planes[-1]
    return net


class VideoResNetStudent(Student):
    def __init__(self, recipe: str, num_classes: int, depth: int = 2, dropout: float = 0.0, width: float = 1.0):
        super().__init__()
        stem, conv_makers = RECIPES[recipe]
        if width == 1.0:
            net = R.VideoResNet(R.BasicBlock, conv_makers, [depth] * 4, stem)
            net.feature_dim = 512
        else:
            net = _scaled_resnet(recipe, depth, width)
        self.stem, self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.stem, net.layer1, net.layer2, net.layer3, net.layer4)
        self.init_head(net.feature_dim, num_classes, dropout)

    def forward_temporal(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)                             # (B, 64, T, H/2, W/2)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, T', H', W')
        return x.mean(dim=(3, 4)).transpose(1, 2)   # (B, T', 512)


def _factory(recipe: str):
    def build(num_classes: int, frames: int, size: int, depth: int = 2,
              dropout: float = 0.0, width: float = 1.0) -> VideoResNetStudent:
        check_scaling(recipe, width, depth, dropout)
        check_option(recipe, "depth", depth, isinstance(depth, int), "an integer >= 1")
        return VideoResNetStudent(recipe, num_classes, depth=depth, dropout=dropout, width=width)

    build.__name__ = recipe
    return build


for _name in RECIPES:
    STUDENTS.register(_name)(_factory(_name))
