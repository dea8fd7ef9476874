"""Clip sampling in time and space, and transforms applied identically to every frame of a clip."""

import numpy as np
import pytest
import torch

from edgekd.data.sampling import clip_indices, clip_span, random_starts, three_crops, uniform_starts
from edgekd.data.transforms import (IDENTITY, LUMA, AugmentConfig, colour_map, eval_transform, finish, normalize,
                                     to_tchw, train_transform)

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_random_starts_cover_the_video_in_order():
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = random_starts(100, frames=8, stride=2, n=4, rng=rng)
        assert s.shape == (4,) and (np.diff(s) >= 0).all()
        assert s.min() >= 0 and s.max() <= 100 - clip_span(8, 2)
    # n=4 clips fall in 4 different quarters of the valid range
    s = np.stack([random_starts(100, 8, 2, 4, rng) for _ in range(200)])
    assert s[:, 0].max() < s[:, 3].min()


def test_uniform_starts():
    assert uniform_starts(100, 8, 2, 1).tolist() == [42]            # centre clip
    assert uniform_starts(100, 8, 2, 3).tolist() == [0, 42, 85]     # first to last
    assert uniform_starts(5, 8, 2, 3).tolist() == [0, 0, 0]          # video shorter than a clip


def test_clip_indices_clamp_short_videos():
    idx = clip_indices(np.array([0, 3]), frames=4, stride=2, num_frames=8)
    assert idx.tolist() == [[0, 2, 4, 6], [3, 5, 7, 7]]


def test_three_crops_along_the_long_side():
    assert three_crops(64, 86, 64) == [(0, 0), (0, 11), (0, 22)]
    assert three_crops(86, 64, 64) == [(0, 0), (11, 0), (22, 0)]


def _clip_of_one_frame(t=6, h=40, w=50, seed=0):
    frame = np.random.default_rng(seed).integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    return np.repeat(frame[None], t, axis=0)


def _apply(tf, clip):
    video, colour = tf(clip)
    assert video.dtype == torch.uint8  # workers send bytes; the loader finishes a batch at once
    return finish(video[None], colour[None], MEAN, STD)[0]


def test_train_transform_draws_once_per_clip():
    clip = _clip_of_one_frame()
    tf = train_transform(32, AugmentConfig(jitter_p=1.0, grayscale_p=0.5))
    torch.manual_seed(0)
    outs = [_apply(tf, clip) for _ in range(8)]
    for out in outs:
        assert out.shape == (3, 6, 32, 32) and out.dtype == torch.float32
        # every frame got the same crop, flip, jitter and grayscale: identical input frames stay identical
        assert torch.equal(out, out[:, :1].expand_as(out))
    assert not torch.equal(outs[0], outs[1])  # but each clip gets its own draw


def test_flip_is_off_when_the_dataset_says_so():
    cfg = AugmentConfig.for_manifest({"hflip": False, "crop_scale": [0.6, 1.0], "frames": 8})
    assert cfg.hflip is False and cfg.crop_scale == (0.6, 1.0)
    # a clip whose left half is dark and right half bright keeps that order under every draw
    clip = np.zeros((4, 32, 32, 3), np.uint8)
    clip[:, :, 16:] = 255
    tf = train_transform(32, AugmentConfig(hflip=False, crop_scale=(0.9, 1.0), jitter=0, hue=0, grayscale_p=0))
    for _ in range(20):
        out = _apply(tf, clip)
        assert out[:, :, :, :8].mean() < out[:, :, :, -8:].mean()


def test_eval_transform_is_a_deterministic_centre_crop():
    clip = _clip_of_one_frame(h=40, w=50)
    out = _apply(eval_transform(32), clip)
    expected = normalize(to_tchw(clip[:, 4:36, 9:41]), MEAN, STD)
    assert torch.equal(out, expected) and out.shape == (3, 6, 32, 32)


def test_colour_maps_are_the_colour_operations_they_stand_for():
    rgb = torch.tensor([[0.8, 0.3, 0.1], [0.2, 0.5, 0.9], [0.5, 0.5, 0.5]])  # 3 pixels, one per row
    apply = lambda m: rgb @ m[:, :3].T + m[:, 3]  # noqa: E731
    gray = apply(colour_map(AugmentConfig(jitter=0, hue=0, grayscale_p=1.0), rgb.mean(0)))
    assert torch.allclose(gray, (rgb @ LUMA)[:, None].expand(3, 3), atol=1e-6)  # torchvision's luma, all channels
    torch.manual_seed(0)
    for _ in range(20):  # hue alone turns chroma: grays stay gray, luma stays, colours change
        out = apply(colour_map(AugmentConfig(jitter=0, hue=0.3, jitter_p=1.0, grayscale_p=0), rgb.mean(0)))
        assert torch.allclose(out[2], rgb[2], atol=1e-5) and torch.allclose(out @ LUMA, rgb @ LUMA, atol=1e-5)
    assert not torch.allclose(out[:2], rgb[:2], atol=1e-2)
    for _ in range(20):  # brightness, contrast, saturation: the mean gray of a gray clip scales, never tints
        m = colour_map(AugmentConfig(jitter=0.4, hue=0, jitter_p=1.0, grayscale_p=0), rgb[2])
        out = apply(m)[2]
        assert torch.allclose(out, out[:1].expand(3), atol=1e-5)
    assert torch.equal(colour_map(AugmentConfig(jitter_p=0.0, grayscale_p=0.0), rgb[2]), IDENTITY)


def test_finish_maps_a_batch_at_once_like_clip_by_clip():
    video = torch.randint(0, 256, (3, 2, 3, 4, 8, 8), dtype=torch.uint8)  # (B, n, C, T, H, W)
    torch.manual_seed(1)
    colour = torch.stack([torch.stack([colour_map(AugmentConfig(jitter_p=1.0), torch.rand(3)) for _ in range(2)])
                          for _ in range(3)])
    batch = finish(video, colour, MEAN, STD)
    one = finish(video[1, 0], colour[1, 0], MEAN, STD)
    assert batch.dtype == torch.float32 and torch.allclose(batch[1, 0], one)
    x = video[1, 0].float() / 255  # (C, T, H, W), mapped by hand
    by_hand = (torch.einsum("ij,jthw->ithw", colour[1, 0, :, :3], x) + colour[1, 0, :, 3, None, None, None]).clamp(0, 1)
    assert torch.allclose(one, (by_hand - 0.5) / 0.25, atol=1e-5)


def test_normalize_values():
    clip = np.full((2, 4, 4, 3), 255, np.uint8)
    out = normalize(to_tchw(clip), MEAN, STD)
    assert out.shape == (3, 2, 4, 4) and torch.allclose(out, torch.full_like(out, 2.0))


@pytest.mark.parametrize("ratio, size, expected", [(1.15, 112, 129), (1.0, 64, 64), (0.5, 64, 64)])
def test_decode_size(ratio, size, expected):
    assert AugmentConfig(short_side_ratio=ratio).decode_size(size) == expected
