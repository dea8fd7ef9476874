"""tiny3d: a four-stage 3D CNN that trains in a minute or two on a laptop CPU (the default demo student).

Each stage is `depth` x (Conv3d 3x3x3 -> BatchNorm3d -> ReLU); the first conv of every stage
halves H and W, and stages 3 and 4 also halve T while at least 2 time steps remain, so
forward_temporal keeps a time axis (T' >= 2 whenever frames >= 2).

    x                     (B, 3,    T,   H,    W)      e.g. (B, 3, 8, 64, 64)
    stage1  16 ch, s(1,2,2) (B, 16,  T,   H/2,  W/2)
    stage2  32 ch, s(1,2,2) (B, 32,  T,   H/4,  W/4)
    stage3  64 ch, s(2,2,2) (B, 64,  T/2, H/8,  W/8)
    stage4 128 ch, s(2,2,2) (B, 128, T/4, H/16, W/16)
    max over H, W         (B, T/4, 128)                 forward_temporal
    mean over T'          (B, 128)                      forward_features
    dropout + Linear      (B, num_classes)              forward_head

Options: `width` scales the channels (16-32-64-128 at 1.0), `depth` is convs per stage,
`dropout` is applied before the classifier.

Spatial pooling is a max, not a mean: the moving object in a small clip covers a few percent of
the frame, and averaging over the whole frame drowned its motion signal (measured on the synthetic
set: 12-15% top-1 with mean pooling vs 68-71% with max, 12 classes).

Cost measured with torch.utils.flop_counter.FlopCounterMode, one clip, 101 classes; GMACs are
multiply-accumulates (the papers' "GFLOPs"; FlopCounterMode reports twice this):
    tiny3d    8x64x64     0.31M params   0.060 GMACs
    tiny3d   16x112x112   0.31M params   0.37 GMACs
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.students.base import STUDENTS, Student, check_option, check_scaling

BASE_CHANNELS = (16, 32, 64, 128)


def conv_bn_relu(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class Tiny3D(Student):
    def __init__(self, num_classes: int, frames: int, width: float = 1.0, depth: int = 1,
                 dropout: float = 0.2):
        super().__init__()
        channels = [max(4, int(round(c * width))) for c in BASE_CHANNELS]
        stages, cin, t = [], 3, frames
        for i, cout in enumerate(channels):
            st = 2 if i >= 2 and t // 2 >= 2 else 1  # halve time in stages 3-4 while T' stays >= 2
            t = (t - 1) // st + 1
            layers = [conv_bn_relu(cin, cout, (st, 2, 2))]
            layers += [conv_bn_relu(cout, cout, (1, 1, 1)) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.init_head(channels[-1], num_classes, dropout)

    def forward_temporal(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(x)                   # (B, C, T', H', W')
        return x.amax(dim=(3, 4)).transpose(1, 2)  # (B, T', C): max keeps small moving objects


@STUDENTS.register("tiny3d")
def tiny3d(num_classes: int, frames: int, size: int, width: float = 1.0, depth: int = 1,
           dropout: float = 0.2) -> Tiny3D:
    check_scaling("tiny3d", width, depth, dropout)
    check_option("tiny3d", "depth", depth, isinstance(depth, int), "an integer >= 1")
    return Tiny3D(num_classes, frames, width=width, depth=depth, dropout=dropout)
