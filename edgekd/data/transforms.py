"""Clip transforms: uint8 frames (T, H, W, 3) -> normalized float32 (C, T, H, W).

torchvision transforms.v2 treats a (T, C, H, W) tensor as a batch of images that share one random
draw, so a clip gets ONE crop box, ONE flip decision and ONE colour jitter for all its frames —
motion stays intact. Each clip of a video gets its own draw.

Horizontal flip swaps "moves left" and "moves right": datasets whose labels depend on direction
(the synthetic one) turn it off in their manifest defaults (`"hflip": false`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import torch

from edgekd.compat.torchvision import import_torchvision

tv = import_torchvision()
from torchvision.transforms import v2  # noqa: E402  (needs the compat shim above)


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


def normalize(clip: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (T, 3, H, W) -> float32 (3, T, H, W), (x/255 - mean) / std."""
    x = clip.to(torch.float32).div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return x.sub_(m).div_(s).permute(1, 0, 2, 3).contiguous()


class TrainTransform:
    """Random resized crop, optional flip, colour jitter, grayscale, normalize: one draw per call.

    A class rather than a closure so datasets pickle into spawned DataLoader workers.
    """

    def __init__(self, size: int, mean, std, cfg: AugmentConfig):
        steps: list[Any] = [v2.RandomResizedCrop(size, scale=cfg.crop_scale, antialias=True)]
        if cfg.hflip:
            steps.append(v2.RandomHorizontalFlip())
        if cfg.jitter > 0 or cfg.hue > 0:
            steps.append(v2.RandomApply([v2.ColorJitter(cfg.jitter, cfg.jitter, cfg.jitter, cfg.hue)],
                                        p=cfg.jitter_p))
        if cfg.grayscale_p > 0:
            steps.append(v2.RandomGrayscale(cfg.grayscale_p))
        self.pipeline = v2.Compose(steps)
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:  # (T, H, W, 3) uint8 -> (3, T, size, size)
        return normalize(self.pipeline(to_tchw(frames)), self.mean, self.std)


def train_transform(size: int, mean, std, cfg: AugmentConfig) -> Callable[[np.ndarray], torch.Tensor]:
    return TrainTransform(size, mean, std, cfg)


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
    """Centre crop + normalize: deterministic."""

    def __init__(self, size: int, mean, std):
        self.size, self.mean, self.std = size, tuple(mean), tuple(std)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:  # (T, H, W, 3) uint8 -> (3, T, size, size)
        return normalize(to_tchw(center_crop(frames, self.size)), self.mean, self.std)


def eval_transform(size: int, mean, std) -> Callable[[np.ndarray], torch.Tensor]:
    return EvalTransform(size, mean, std)
