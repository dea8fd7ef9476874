"""Clip augmentations for self-supervised pretraining (the TimeBalance teachers, PCL).

    augment(x, hflip, ...)               crop, flip, colour jitter and grayscale: the paper's draw (and PCL's)
    resized_crop(x, side, hflip, ...)    one crop of side fraction `side`, resized back, mirrored at p 0.5
    authors_augment(x, mean, std, ...)   the draw of the TimeBalance authors' pretraining loader

Every draw is made once per clip and applied to all its frames, so the motion inside a clip stays
intact while two clips (or two views of one clip) differ. Inputs are batches of normalized clips
(N, 3, T, H, W); everything is vectorized over N, so augmenting costs little next to the network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# The authors' pretraining draw (notes on their dl_ssl.py). Where their code gives a range of
# probabilities (0.25-0.3) we use 0.3; it does not state the gamma range, we take +-0.25 like the others.
CROP_SIDE = (0.5, 1.0)       # crop side as a fraction of the frame side, aspect kept
COLOR_P, COLOR_RANGE = 0.3, 0.25   # brightness, contrast, saturation, gamma: factor 1 +- 0.25 with p 0.3
HUE_P, HUE_RANGE = 0.3, 0.1        # hue shift in turns (+-0.1 of the colour circle)
GRAYSCALE_P = 0.175
CHANNEL_DROP_P = 0.125       # zero one of the three colour channels
ERASE_P, ERASE_AREA, ERASE_RATIO = 0.7, (0.02, 0.33), (0.3, 3.3)   # random erasing (one box per clip)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator | None, device) -> torch.Tensor:
    return (lo + (hi - lo) * torch.rand(n, generator=gen)).to(device)


def resized_crop(x: torch.Tensor, side: torch.Tensor, hflip: bool, gen: torch.Generator | None = None
                 ) -> torch.Tensor:
    """Crop a window of `side` (N,) fraction of each frame side (aspect kept) at a random place, resize
    it back to H x W (bilinear), and, with `hflip`, mirror half of the clips. x: (N, C, T, H, W)."""
    N, C, T, H, W = x.shape
    dev = x.device
    tx = (2 * torch.rand(N, generator=gen).to(dev) - 1) * (1 - side)
    ty = (2 * torch.rand(N, generator=gen).to(dev) - 1) * (1 - side)
    flip = (torch.rand(N, generator=gen).to(dev) < 0.5) if hflip else torch.zeros(N, dtype=torch.bool, device=dev)
    theta = torch.zeros(N, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = side * torch.where(flip, -1.0, 1.0), tx
    theta[:, 1, 1], theta[:, 1, 2] = side, ty
    grid = F.affine_grid(theta, (N, C * T, H, W), align_corners=False)
    return F.grid_sample(x.reshape(N, C * T, H, W), grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False).reshape(N, C, T, H, W)


def _hue_shift(img: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma of (N, 3, T, H, W) RGB in [0, 1] by `turns` (N,) of a full circle (YIQ space)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          device=img.device)
    yiq = torch.einsum("ij,njthw->nithw", to_yiq, img)
    a = 2 * math.pi * turns.view(-1, 1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], i * a.cos() - q * a.sin(), i * a.sin() + q * a.cos()], 1)
    return torch.einsum("ij,njthw->nithw", torch.linalg.inv(to_yiq), yiq)


def _erase(img: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Random erasing: with p ERASE_P one box per clip (area 2-33 %, aspect 0.3-3.3) set to 0."""
    N, _, _, H, W = img.shape
    dev = img.device
    area = _uniform(N, *ERASE_AREA, gen, dev) * H * W
    ratio = torch.exp(_uniform(N, math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]), gen, dev))
    h = (area * ratio).sqrt().clamp(1, H)
    w = (area / ratio).sqrt().clamp(1, W)
    top = _uniform(N, 0, 1, gen, dev) * (H - h)
    left = _uniform(N, 0, 1, gen, dev) * (W - w)
    rows = torch.arange(H, device=dev).view(1, H, 1)
    cols = torch.arange(W, device=dev).view(1, 1, W)
    box = ((rows >= top.view(-1, 1, 1)) & (rows < (top + h).view(-1, 1, 1))
           & (cols >= left.view(-1, 1, 1)) & (cols < (left + w).view(-1, 1, 1)))      # (N, H, W)
    on = (_uniform(N, 0, 1, gen, dev) < ERASE_P).view(-1, 1, 1)
    return img.masked_fill((box & on).view(N, 1, 1, H, W), 0.0)


def authors_augment(x: torch.Tensor, mean, std, hflip: bool, gen: torch.Generator | None = None) -> torch.Tensor:
    """The TimeBalance authors' pretraining augmentation, one draw per clip.

    Resized crop of side U(0.5, 1) (aspect kept) and a horizontal flip (where direction is not the
    label: `hflip`); then on the RGB values in [0, 1]: brightness, contrast, saturation and hue with
    p 0.3 each, grayscale (p 0.175), gamma (p 0.3), zeroing one colour channel (p 0.125); random
    erasing (p 0.7) on the normalized clip, as a loader erases after normalizing.
    x: (N, 3, T, H, W) normalized with `mean`/`std` (3 values each) -> same shape.
    """
    N, dev = x.shape[0], x.device
    u = lambda lo, hi: _uniform(N, lo, hi, gen, dev)  # noqa: E731
    chance = lambda p: (u(0, 1) < p).view(N, 1, 1, 1, 1)  # noqa: E731
    out = resized_crop(x, u(*CROP_SIDE), hflip, gen)
    m = torch.as_tensor(mean, dtype=out.dtype, device=dev).view(1, 3, 1, 1, 1)
    s = torch.as_tensor(std, dtype=out.dtype, device=dev).view(1, 3, 1, 1, 1)
    img = (out * s + m).clamp(0, 1)
    factor = lambda: (1 + COLOR_RANGE * (2 * u(0, 1) - 1)).view(N, 1, 1, 1, 1)  # noqa: E731
    img = torch.where(chance(COLOR_P), (img * factor()).clamp(0, 1), img)                       # brightness
    gray_mean = img.mean(dim=(1, 2, 3, 4), keepdim=True)
    img = torch.where(chance(COLOR_P), ((img - gray_mean) * factor() + gray_mean).clamp(0, 1), img)  # contrast
    luma = (img * torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1, 1)).sum(1, keepdim=True)
    img = torch.where(chance(COLOR_P), ((img - luma) * factor() + luma).clamp(0, 1), img)      # saturation
    img = torch.where(chance(HUE_P), _hue_shift(img, u(-HUE_RANGE, HUE_RANGE)).clamp(0, 1), img)
    luma = (img * torch.tensor([0.299, 0.587, 0.114], device=dev).view(1, 3, 1, 1, 1)).sum(1, keepdim=True)
    img = torch.where(chance(GRAYSCALE_P), luma.expand_as(img), img)
    img = torch.where(chance(COLOR_P), img.clamp_min(1e-6) ** factor(), img)                   # gamma
    drop = F.one_hot(torch.randint(0, 3, (N,), generator=gen), 3).to(dev, img.dtype).view(N, 3, 1, 1, 1)
    img = torch.where(chance(CHANNEL_DROP_P), img * (1 - drop), img)
    return _erase((img - m) / s, gen)


def augment(x: torch.Tensor, hflip: bool, generator: torch.Generator | None = None,
            scale: tuple[float, float] = (0.4, 1.0), jitter: float = 0.4, grayscale_p: float = 0.2) -> torch.Tensor:
    """One random resized crop (+ flip), saturation/contrast/brightness and grayscale draw per clip.

    The draw is the same for all frames of a clip, so motion stays intact.

    x: (N, 3, T, H, W) normalized clips -> same shape. Vectorized (one affine grid per clip), so it
    costs little next to the network; the twins of L_D1 (Eq. 3) are two calls on the same clips.
    """
    N = x.shape[0]
    dev = x.device
    rand = lambda *s: torch.rand(*s, generator=generator).to(dev)  # noqa: E731
    side = (scale[0] + (scale[1] - scale[0]) * rand(N)).sqrt()     # crop side as a fraction of the frame
    out = resized_crop(x, side, hflip, generator)
    luma = out.mean(dim=1, keepdim=True)
    saturation = (1 + jitter * (2 * rand(N) - 1)).view(N, 1, 1, 1, 1)
    saturation = torch.where((rand(N) < grayscale_p).view(N, 1, 1, 1, 1), 0.0, saturation)  # grayscale
    out = luma + (out - luma) * saturation
    contrast = (1 + jitter * (2 * rand(N) - 1)).view(N, 1, 1, 1, 1)
    brightness = (jitter * (2 * rand(N) - 1)).view(N, 1, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3, 4), keepdim=True)
    return (out - mean) * contrast + mean + brightness
