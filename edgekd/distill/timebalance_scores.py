"""TimeBalance's temporal-similarity score s, computed once per video before the student trains.

Algorithm 1 computes s (line 16) before the student's training loop, and the authors' code reads it
from a per-video file, fixed for every epoch. Here the n clips per video are back-to-back at frame stride 1 and
un-augmented (the centre window, edgekd.data.sampling.window_starts), as the teachers saw clips in
pretraining, so s describes the video and not the augmentation a step happened to draw. (At the
run's own stride, 4 back-to-back clips of the synthetic set's 8 frames x 2 would need 64 frames of
its 32-frame videos.)
"""

from __future__ import annotations

import dataclasses

import torch

from edgekd.errors import TeacherError


@torch.no_grad()
def video_scores(invariant, distinctive, manifests, spec, n: int, *, backend: str = "auto", workers: int = 0,
                 batch_size: int = 16) -> dict[str, float]:
    """video id -> s (Eq. 6 over Eq. 5's projections) for every video of `manifests`.

    invariant, distinctive: the frozen teachers (f_I, f_D); manifests: the videos to score; spec: the
    run's DataSpec (the teachers re-normalize and resize it themselves); n: clips per video.
    """
    from edgekd.data.dataset import ClipDataset, make_loader
    from edgekd.teachers.timebalance import projected, temporal_similarity

    spec = dataclasses.replace(spec, frame_stride=1)
    scores: dict[str, float] = {}
    for manifest in manifests:
        dataset = ClipDataset(manifest, spec, mode="eval", clips_per_video=n, backend=backend,
                              sampling="center-window")
        for item in make_loader(dataset, batch_size, shuffle=False, num_workers=workers):
            clips = item["video"]                                           # (B, n, 3, T, H, W)
            B = clips.shape[0]
            z = []
            for teacher in (invariant, distinctive):
                device = next(iter(teacher.parameters()), torch.zeros(0)).device
                emb = teacher.embed(clips.flatten(0, 1).to(device)).view(B, n, -1)  # (B, n, D)
                z.append(projected(teacher, emb).cpu())
            s = temporal_similarity(*z)                                     # (B,)
            scores.update({manifest.entries[i].video_id: float(v) for i, v in zip(item["index"].tolist(), s)})
    return scores


def lookup(scores: dict[str, float], video_ids: list[str]) -> torch.Tensor:
    """(B,) scores of `video_ids` from `video_scores`' table."""
    missing = [v for v in video_ids if v not in scores]
    if missing:
        raise TeacherError(f"no TimeBalance score for video(s) {', '.join(missing[:3])}",
                           "the scores are computed before training for the run's labeled and unlabeled videos")
    return torch.tensor([scores[v] for v in video_ids])
