"""MobileNetV3 + Temporal Shift Module: a 2D edge backbone that still sees motion.

MobileNetV3 (Howard et al., ICCV 2019; torchvision's small/large recipes) runs on every frame;
TSM (Lin et al., ICCV 2019) lets neighbouring frames talk at zero FLOPs: inside the residual
branch of each inverted-residual block that has a skip connection, 1/8 of the channels take the
previous frame's values and 1/8 the next frame's (zeros at the clip ends) before the block's
convs run ("residual shift", the variant the TSM paper recommends).

For edge runtimes the network uses only Conv2d, BatchNorm, Hardswish/Hardsigmoid/ReLU,
Linear, reshapes, static slices and Concat: no 3D ops, no torch.roll, no in-place writes,
every tensor 4D or less (the shift works on (B, T, C, H*W)), so it exports to plain ONNX and
maps onto TensorRT / Jetson DLA / INT8 calibration. The number of frames is fixed at build
time (as in TSM), which static-shape engines want anyway; the batch stays free.

    x                          (B, 3, T, H, W)          e.g. (B, 3, 8, 160, 160)
    frames to batch            (B*T, 3, H, W)
    features (TSM blocks)      (B*T, C_last, H/32, W/32)   C_last = 576 small / 960 large
    mean over H, W             (B*T, C_last)
    Linear + Hardswish         (B*T, D)                 D = 1024 small / 1280 large (the V3 head)
    unfold time                (B, T, D)                forward_temporal
    mean over T                (B, D)                   forward_features
    dropout + Linear           (B, num_classes)         forward_head

Options: `width` (MobileNetV3 width multiplier), `shift_div` (1/shift_div of the channels move
each way), `shift` ("offline" or "online"), `dropout` before the classifier. Weights start random:
nothing is downloaded.

Online shift (TSM paper Sec. 4, the MIT online demo): 1/shift_div of the channels come from the
PREVIOUS frame only (zeros for the first frame), nothing from the future. Frame t then depends on
frames <= t alone, so the same weights also run one frame at a time (`forward_frame`), each shift
block carrying the channels it hands on in a buffer of shape (N, C/shift_div, H', W'). The head is
affine after the temporal mean (per-frame Hardswish happens before it), so the clip logits equal
the mean of the per-frame logits over the clip, exactly up to float rounding:
    head(mean_t f_t) = W mean_t f_t + b = mean_t (W f_t + b)

Cost measured with torch.utils.flop_counter.FlopCounterMode, one clip, 101 classes; GMACs are
multiply-accumulates (the papers' "GFLOPs"; FlopCounterMode reports twice this):
    mobilenet_v3_small_tsm   8x160x160   1.62M params   0.23 GMACs
    mobilenet_v3_large_tsm   8x224x224   4.33M params   1.72 GMACs
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.compat.torchvision import import_torchvision
from edgekd.errors import ConfigError
from edgekd.students.base import STUDENTS, Student, check_option, check_scaling

tv = import_torchvision()


SHIFTS = ("offline", "online")


def temporal_shift(x: torch.Tensor, frames: int, fold: int) -> torch.Tensor:
    """Shift `fold` channels one frame back in time and `fold` one frame forward.

    x: (B*T, C, H, W) frames of B clips -> same shape; frame t's first `fold` channels now hold
    frame t+1's, the next `fold` hold frame t-1's, the rest are untouched.
    """
    bt, c, h, w = x.shape
    x = x.reshape(-1, frames, c, h * w)                          # (B, T, C, HW)
    pad = torch.zeros_like(x[:, :1, :fold])                      # (B, 1, fold, HW)
    back = torch.cat([x[:, 1:, :fold], pad], dim=1)              # frame t <- t+1
    fwd = torch.cat([pad, x[:, :-1, fold:2 * fold]], dim=1)      # frame t <- t-1
    x = torch.cat([back, fwd, x[:, :, 2 * fold:]], dim=2)        # (B, T, C, HW)
    return x.reshape(bt, c, h, w)


def online_shift(x: torch.Tensor, frames: int, fold: int) -> torch.Tensor:
    """Frame t's first `fold` channels take frame t-1's (zeros for t = 0); nothing from the future.

    x: (B*T, C, H, W) -> same shape. Written with slices and Concat (no in-place writes), which
    export to ONNX correctly.
    """
    bt, c, h, w = x.shape
    x = x.reshape(-1, frames, c, h * w)                          # (B, T, C, HW)
    past = torch.cat([torch.zeros_like(x[:, :1, :fold]), x[:, :-1, :fold]], dim=1)  # frame t <- t-1
    x = torch.cat([past, x[:, :, fold:]], dim=2)                 # (B, T, C, HW)
    return x.reshape(bt, c, h, w)


def shift_step(x: torch.Tensor, buffer: torch.Tensor, fold: int) -> tuple[torch.Tensor, torch.Tensor]:
    """online_shift for one frame: x (N, C, H, W), buffer (N, fold, H, W) = the previous frame's
    first `fold` channels -> (shifted x, this frame's first `fold` channels for the next frame)."""
    return torch.cat([buffer, x[:, fold:]], dim=1), x[:, :fold]


class ShiftInvertedResidual(nn.Module):
    """torchvision's InvertedResidual with a temporal shift in front of its residual branch.

    Keeps the wrapped block under the same name (`block`), so parameter names match torchvision.
    """

    def __init__(self, ir: nn.Module, frames: int, shift_div: int, online: bool = False):
        super().__init__()
        self.block = ir.block
        self.use_res_connect = ir.use_res_connect
        self.frames = frames
        self.shift_div = shift_div
        self.shift = online_shift if online else temporal_shift
        # a Python int, so the streaming graph slices with constants (static state shapes)
        self.fold = ir.block[0][0].in_channels // shift_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.use_res_connect:
            return self.block(x)
        fold = x.shape[1] // self.shift_div
        return x + self.block(self.shift(x, self.frames, fold))

    def step(self, x: torch.Tensor, buffer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame of the online block: (N, C, H, W), buffer -> (N, C, H, W), new buffer."""
        shifted, buffer = shift_step(x, buffer, self.fold)
        return x + self.block(shifted), buffer


class MobileNetV3TSM(Student):
    def __init__(self, arch: str, num_classes: int, frames: int, width: float = 1.0,
                 shift_div: int = 8, dropout: float = 0.2, shift: str = "offline"):
        super().__init__()
        net = getattr(tv.models, arch)(weights=None, width_mult=width)
        IR = tv.models.mobilenetv3.InvertedResidual
        self.frames = frames
        self.streams = shift == "online"
        self.features = nn.Sequential(*[
            ShiftInvertedResidual(m, frames, shift_div, self.streams) if isinstance(m, IR) else m
            for m in net.features])
        project = net.classifier[0]                              # Linear(C_last, D)
        self.project = nn.Sequential(project, nn.Hardswish())
        self.init_head(project.out_features, num_classes, dropout)

    def forward_temporal(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if not torch.jit.is_tracing() and t != self.frames:
            raise ConfigError(f"this student was built for {self.frames} frames, got a clip of {t}",
                              f"build it with frames={t} or sample {self.frames}-frame clips")
        x = x.transpose(1, 2).reshape(b * t, c, h, w)            # (B*T, 3, H, W)
        x = self.features(x)                                     # (B*T, C_last, H', W')
        x = self.project(x.mean(dim=(2, 3)))                     # (B*T, D)
        return x.reshape(b, t, -1)                               # (B, T, D)

    def stream_state(self, batch: int, size: int) -> list[torch.Tensor]:
        """Zero buffers that start a stream, one per shift block: (batch, C/shift_div, H', W')."""
        p = next(self.parameters())
        with torch.no_grad():                                    # one dry frame gives every block's H', W'
            _, state = self.forward_frame(torch.zeros(batch, 3, size, size, dtype=p.dtype, device=p.device))
        return [torch.zeros_like(s) for s in state]

    def forward_frame(self, frame: torch.Tensor, state: list[torch.Tensor] | None = None
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One frame (N, 3, H, W) and the buffers (None: zeros) -> logits (N, classes), new buffers."""
        if not self.streams:
            raise ConfigError("this student uses the offline (bidirectional) shift and cannot run frame by frame",
                              "train it with --set student.shift=online")
        buffers = iter(state) if state is not None else None
        new: list[torch.Tensor] = []
        x = frame
        for m in self.features:
            if isinstance(m, ShiftInvertedResidual) and m.use_res_connect:
                x, b = m.step(x, next(buffers) if buffers is not None else torch.zeros_like(x[:, :m.fold]))
                new.append(b)                                    # (N, fold, H', W')
            else:
                x = m(x)                                         # (N, C, H', W')
        f = self.project(x.mean(dim=(2, 3)))                     # (N, D)
        return self.forward_head(f), new


def _factory(arch: str):
    name = f"{arch}_tsm"

    def build(num_classes: int, frames: int, size: int, width: float = 1.0, shift_div: int = 8,
              dropout: float = 0.2, shift: str = "offline") -> MobileNetV3TSM:
        check_scaling(name, width, 1, dropout)
        check_option(name, "shift_div", shift_div, isinstance(shift_div, int) and shift_div >= 2,
                     "an integer >= 2")
        check_option(name, "shift", shift, shift in SHIFTS, " or ".join(SHIFTS))
        return MobileNetV3TSM(arch, num_classes, frames, width=width, shift_div=shift_div,
                              dropout=dropout, shift=shift)

    build.__name__ = name
    return build


for _arch in ("mobilenet_v3_small", "mobilenet_v3_large"):
    STUDENTS.register(f"{_arch}_tsm")(_factory(_arch))
