"""X3D (Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition", CVPR 2020).

Written from the paper's Table 1 recipe (the same structure as pytorchvideo's create_x3d),
with export-friendly activations only: ReLU, Sigmoid, and Swish spelt out as x * sigmoid(x).

    stem   conv 1x3x3 s(1,2,2) 3->24, depthwise conv 5x1x1, BN, ReLU
    res2..res5: bottleneck blocks, widths 24-48-96-192, depths 3-5-11-7 (the paper's 1-2-5-3
           x depth factor 2.2, rounded up); the first block of each stage halves H and W
      block: 1x1x1 expand (x2.25) -> BN -> ReLU
             3x3x3 channel-wise (depthwise) conv -> BN -> [SE, ratio 1/16, every other block]
             -> Swish -> 1x1x1 project -> BN;  ReLU(shortcut + branch)
    conv5  1x1x1 192 -> 432, BN, ReLU
    head   Linear 432 -> 2048 (no bias), ReLU, dropout, Linear 2048 -> num_classes

X3D never strides in time, so T' = T:

    x                          (B, 3,   T, H,    W)      e.g. (B, 3, 4, 160, 160) for XS
    stem                       (B, 24,  T, H/2,  W/2)
    res2                       (B, 24,  T, H/4,  W/4)
    res3                       (B, 48,  T, H/8,  W/8)
    res4                       (B, 96,  T, H/16, W/16)
    res5                       (B, 192, T, H/32, W/32)
    conv5 + mean over H, W     (B, T, 432)
    Linear + ReLU              (B, T, 2048)             forward_temporal
    mean over T                (B, 2048)                forward_features
    dropout + Linear           (B, num_classes)         forward_head

One deviation from the paper: the 2048-d projection runs on each time step before the mean over
time (the paper pools T, H, W first), so forward_features is exactly the mean of forward_temporal.

x3d_xs and x3d_s are the same network; the paper names them by the clip they see (XS: 4 frames
at 160 px, S: 13 frames at 160 px). Here the clip comes from `frames` and `size`.

Options: `width` multiplies every channel width (rounded to multiples of 8), `depth` multiplies
the blocks per stage (rounded up), `dropout` before the classifier (0.5 in the paper).

Cost measured with torch.utils.flop_counter.FlopCounterMode, one clip, 101 classes; GMACs are
multiply-accumulates (the papers' "GFLOPs"; FlopCounterMode reports twice this):
    x3d_xs   4x160x160   3.18M params   0.61 GMACs   (paper: 3.8M with 400 classes, 0.6)
    x3d_s   13x160x160   3.18M params   1.97 GMACs   (paper: 3.8M with 400 classes, 2.0)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekd.students.base import STUDENTS, Student, check_scaling

STEM_WIDTH = 24
STAGE_WIDTHS = (24, 48, 96, 192)
STAGE_DEPTHS = (3, 5, 11, 7)
EXPANSION = 2.25
SE_RATIO = 1 / 16
HEAD_DIM = 2048


def round_width(width: float, divisor: int = 8, min_width: int = 8) -> int:
    """Nearest multiple of `divisor` (never more than 10% below `width`), as in the X3D code."""
    out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * width else out


class Swish(nn.Module):
    """x * sigmoid(x), written out so every exporter emits plain Sigmoid + Mul."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class SqueezeExcite(nn.Module):
    """Channel gates from the clip's global average: (B, C, T, H, W) -> same shape."""

    def __init__(self, channels: int, ratio: float):
        super().__init__()
        hidden = round_width(channels * ratio)
        self.reduce = nn.Conv3d(channels, hidden, kernel_size=1)
        self.expand = nn.Conv3d(hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3, 4), keepdim=True)                   # (B, C, 1, 1, 1)
        s = torch.sigmoid(self.expand(torch.relu(self.reduce(s))))
        return x * s


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, inner: int, stride: int, se: bool):
        super().__init__()
        self.conv_a = nn.Conv3d(cin, inner, kernel_size=1, bias=False)
        self.bn_a = nn.BatchNorm3d(inner)
        self.conv_b = nn.Conv3d(inner, inner, kernel_size=3, stride=(1, stride, stride), padding=1,
                                groups=inner, bias=False)  # channel-wise 3x3x3
        self.bn_b = nn.BatchNorm3d(inner)
        self.se = SqueezeExcite(inner, SE_RATIO) if se else nn.Identity()
        self.swish = Swish()
        self.conv_c = nn.Conv3d(inner, cout, kernel_size=1, bias=False)
        self.bn_c = nn.BatchNorm3d(cout)
        self.shortcut = nn.Identity()
        if cin != cout or stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv3d(cin, cout, kernel_size=1, stride=(1, stride, stride), bias=False),
                nn.BatchNorm3d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn_a(self.conv_a(x)))                 # (B, inner, T, H, W)
        y = self.swish(self.se(self.bn_b(self.conv_b(y))))        # (B, inner, T, H/s, W/s)
        y = self.bn_c(self.conv_c(y))                             # (B, cout, T, H/s, W/s)
        return torch.relu(self.shortcut(x) + y)


class X3D(Student):
    def __init__(self, num_classes: int, width: float = 1.0, depth: float = 1.0, dropout: float = 0.5):
        super().__init__()
        stem = round_width(STEM_WIDTH * width)
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
            nn.Conv3d(stem, stem, kernel_size=(5, 1, 1), padding=(2, 0, 0), groups=stem, bias=False),
            nn.BatchNorm3d(stem),
            nn.ReLU(inplace=True),
        )
        stages, cin = [], stem
        for base_width, base_depth in zip(STAGE_WIDTHS, STAGE_DEPTHS):
            cout = round_width(base_width * width)
            inner = int(EXPANSION * cout)
            blocks = [Bottleneck(cin if i == 0 else cout, cout, inner, stride=2 if i == 0 else 1,
                                 se=i % 2 == 0)
                      for i in range(math.ceil(base_depth * depth))]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        conv5 = int(EXPANSION * cin)
        self.conv5 = nn.Sequential(nn.Conv3d(cin, conv5, kernel_size=1, bias=False),
                                   nn.BatchNorm3d(conv5), nn.ReLU(inplace=True))
        self.project = nn.Sequential(nn.Linear(conv5, HEAD_DIM, bias=False), nn.ReLU(inplace=True))
        self.init_head(HEAD_DIM, num_classes, dropout)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_temporal(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))                             # (B, 192, T, H/32, W/32)
        x = self.conv5(x).mean(dim=(3, 4))                        # (B, 432, T)
        return self.project(x.transpose(1, 2))                    # (B, T, 2048)


def _factory(name: str):
    def build(num_classes: int, frames: int, size: int, width: float = 1.0, depth: float = 1.0,
              dropout: float = 0.5) -> X3D:
        check_scaling(name, width, depth, dropout)
        return X3D(num_classes, width=width, depth=depth, dropout=dropout)

    build.__name__ = name
    return build


for _name in ("x3d_xs", "x3d_s"):
    STUDENTS.register(_name)(_factory(_name))
