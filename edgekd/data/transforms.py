"""Clip transforms: uint8 frames (T, H, W, 3) -> uint8 clip (3, T, S, S) + its colour transform.

torchvision transforms.v2 treats a (T, C, H, W) tensor as a batch of images that share one random
draw, so a clip gets ONE crop box and ONE flip decision for all its frames — motion stays intact.

Colour jitter (brightness, contrast, saturation, hue in random order) and grayscale are linear in
RGB, so one clip's draw is ONE affine map x -> A x + b (a (3, 4) matrix; hue turns about the gray
axis in YIQ space), drawn in the worker and applied by `finish` with normalization to a whole batch
of uint8 clips in one op in the main process: workers skip the float conversion and send a quarter
of the bytes, and jitter costs a matrix product instead of per-op HSV round trips (the clip is
clamped to [0, 1] once, after all ops, where torchvision clamps after each). Each clip of a video
gets its own draw.

Horizontal flip swaps "moves left" and "moves right": datasets whose labels depend on direction
(the synthetic one) turn it off in their manifest defaults (`"hflip": false`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import torch

from edgekd.compat.torchvision import import_torchvision

tv = import_torchvision()
from torchvision.transforms import v2  # noqa: E402  (needs the compat shim above)

LUMA = torch.tensor([0.299, 0.587, 0.114])  # ITU-R 601 weights, as torchvision's rgb_to_grayscale
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
IDENTITY = torch.cat([torch.eye(3), torch.zeros(3, 1)], dim=1)  # (3, 4): no colour change


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    hflip: bool = True
    crop_scale: tuple[float, float] = (0.4, 1.0)   # area fraction of RandomResizedCrop
    jitter: float = 0.4                            # brightness/contrast/saturation strength (0 = off)
    hue: float = 0.1
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    short_side_ratio: float = 1.15                 # decode short side = ratio * spec.size

    @classmethod
    def for_manifest(cls, defaults: dict[str, Any], **overrides: Any) -> "AugmentConfig":
        """Dataset defaults (e.g. the synthetic set's hflip=False) overridden by keyword arguments."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in defaults.items() if k in known}
        values.update(overrides)
        return cls(**values)

    def decode_size(self, size: int) -> int:
        return max(size, round(size * self.short_side_ratio))


def to_tchw(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) numpy -> uint8 (T, 3, H, W) tensor (no copy of pixel data)."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2)


def to_cthw(clip: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) -> contiguous (3, T, H, W), the layout students take."""
    return clip.permute(1, 0, 2, 3).contiguous()


def normalize(clip: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (T, 3, H, W) -> float32 (3, T, H, W), (x/255 - mean) / std."""
    return finish(to_cthw(clip)[None], IDENTITY[None], mean, std)[0]


def finish(video: torch.Tensor, colour: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 clips (..., 3, T, H, W) and their colour maps (..., 3, 4) -> normalized float32 clips.

    ((A x/255 + b) - mean) / std, clamped to where [0, 1] lands, as ONE batched matrix product per
    clip (normalization folded into A and b) and one clamp; no per-op passes over the pixels.
    """
    lead, (c, t, h, w) = video.shape[:-4], video.shape[-4:]
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1)
    colour = colour.reshape(-1, 3, 4).to(torch.float32)
    a = colour[:, :, :3] / (255.0 * s)                                   # (N, 3, 3)
    b = (colour[:, :, 3:] - m) / s                                       # (N, 3, 1)
    x = video.reshape(-1, c, t * h * w).to(torch.float32)                # (N, 3, THW)
    out = torch.baddbmm(b, a, x)
    if not torch.equal(colour, IDENTITY.expand_as(colour)):  # jittered colours can leave [0, 1]
        out = out.clamp_(min=-m / s, max=(1 - m) / s)
    return out.view(*lead, c, t, h, w)


def colour_map(cfg: AugmentConfig, mean_rgb: torch.Tensor) -> torch.Tensor:
    """One clip's random colour jitter and grayscale as a (3, 4) affine map [A | b] on [0, 1] RGB.

    mean_rgb: the clip's mean colour in [0, 1]; contrast blends towards its (current) gray level.
    Draws from torch's RNG, like the v2 transforms (seeded per DataLoader worker).
    """
    a, b = torch.eye(3), torch.zeros(3)

    def then(m: torch.Tensor, offset: torch.Tensor | float = 0.0) -> None:
        nonlocal a, b
        a, b = m @ a, m @ b + offset

    def factor() -> float:
        return float(torch.empty(()).uniform_(max(0.0, 1 - cfg.jitter), 1 + cfg.jitter))

    gray_rows = torch.ones(3, 1) * LUMA[None]  # every channel <- luma
    if (cfg.jitter > 0 or cfg.hue > 0) and float(torch.rand(())) < cfg.jitter_p:
        for op in torch.randperm(4).tolist():  # torchvision's ColorJitter applies its ops in random order
            if op == 0 and cfg.jitter > 0:  # brightness
                then(factor() * torch.eye(3))
            elif op == 1 and cfg.jitter > 0:  # contrast: blend with the clip's mean gray
                c = factor()
                then(c * torch.eye(3), (1 - c) * float(LUMA @ (a @ mean_rgb + b)))
            elif op == 2 and cfg.jitter > 0:  # saturation: blend with the pixel's gray
                s = factor()
                then(s * torch.eye(3) + (1 - s) * gray_rows)
            elif op == 3 and cfg.hue > 0:  # hue: rotate chroma (I, Q) about the gray axis
                t = float(torch.empty(()).uniform_(-cfg.hue, cfg.hue)) * 2 * math.pi
                rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(t), -math.sin(t)], [0.0, math.sin(t), math.cos(t)]])
                then(torch.linalg.inv(_RGB_TO_YIQ) @ rot @ _RGB_TO_YIQ)
    if cfg.grayscale_p > 0 and float(torch.rand(())) < cfg.grayscale_p:
        then(gray_rows)
    return torch.cat([a, b[:, None]], dim=1)


class TrainTransform:
    """Random resized crop and optional flip now, colour jitter and grayscale drawn as a map for `finish`.

    A class rather than a closure so datasets pickle into spawned DataLoader workers.
    """

    def __init__(self, size: int, cfg: AugmentConfig):
        steps: list[Any] = [v2.RandomResizedCrop(size, scale=cfg.crop_scale, antialias=True)]
        if cfg.hflip:
            steps.append(v2.RandomHorizontalFlip())
        self.pipeline = v2.Compose(steps)
        self.cfg = cfg

    def __call__(self, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, H, W, 3) uint8 -> uint8 (3, T, size, size) and its (3, 4) colour map."""
        clip = to_cthw(self.pipeline(to_tchw(frames)))
        mean_rgb = clip[:, ::2, ::4, ::4].to(torch.float32).mean(dim=(1, 2, 3)) / 255.0  # a sample is enough
        return clip, colour_map(self.cfg, mean_rgb)


def train_transform(size: int, cfg: AugmentConfig) -> Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]:
    return TrainTransform(size, cfg)


def crop(frames: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """A size x size window of (T, H, W, 3) frames; frames smaller than size are resized up."""
    t, h, w, _ = frames.shape
    if h < size or w < size:
        x = torch.nn.functional.interpolate(to_tchw(frames).float(), size=(max(h, size), max(w, size)),
                                            mode="bilinear", align_corners=False)
        frames = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        h, w = frames.shape[1:3]
        top, left = min(top, h - size), min(left, w - size)
    return frames[:, max(0, top):max(0, top) + size, max(0, left):max(0, left) + size]


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    h, w = frames.shape[1:3]
    return crop(frames, (h - size) // 2, (w - size) // 2, size)


class EvalTransform:
    """Centre crop: deterministic, no colour change."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:  # -> uint8 (3, T, size, size)
        return to_cthw(to_tchw(center_crop(frames, self.size))), IDENTITY


def eval_transform(size: int) -> Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]:
    return EvalTransform(size)
