"""Linear probe: how good a frozen backbone's features are for the labeled task.

    bank = ClipSet.decode(manifest, spec)     # one centre clip per video, decoded once
    top1 = linear_probe(backbone, train_bank, test_bank)

The standard downstream measure for self-supervised video representations (a linear classifier on
frozen features). It is cheap enough to run after every pretraining epoch, which a fine-tune is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from edgekd.data.spec import DataSpec
from edgekd.errors import DataError


@dataclass
class ClipSet:
    clips: torch.Tensor   # (N, 3, T, H, W) normalized float
    labels: torch.Tensor  # (N,)

    @classmethod
    def decode(cls, manifest, spec: DataSpec, batch_size: int = 16) -> "ClipSet":
        """The centre clip (time and space) of every video, decoded by the data layer."""
        from edgekd.data.dataset import ClipDataset, make_loader

        loader = make_loader(ClipDataset(manifest, spec, mode="eval"), batch_size, shuffle=False, num_workers=0)
        batches = list(loader)
        if not batches:
            raise DataError(f"no video of {manifest.source} decodes: a linear probe needs at least one clip",
                            "see the skipped videos listed above; re-encode or remove them")
        return cls(torch.cat([b["video"] for b in batches]), torch.cat([b["label"] for b in batches]))


@torch.no_grad()
def features(backbone, clips: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """backbone.forward_features in eval mode, batched: (N, 3, T, H, W) -> (N, D)."""
    was = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    out = torch.cat([backbone.forward_features(clips[i:i + batch_size].to(device)).float().cpu()
                     for i in range(0, len(clips), batch_size)])
    backbone.train(was)
    return out


def linear_probe(backbone, train: ClipSet, test: ClipSet, steps: int = 300, lr: float = 0.05,
                 weight_decay: float = 1e-3, seed: int = 0) -> float:
    """Top-1 on `test` of a linear classifier trained (full batch, Adam) on `train`'s frozen features,
    standardized with the train statistics."""
    f_train, f_test = features(backbone, train.clips), features(backbone, test.clips)
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    classes = int(max(train.labels.max(), test.labels.max())) + 1
    gen = torch.Generator().manual_seed(seed)
    w = (torch.randn(f_train.shape[1], classes, generator=gen) * 0.01).requires_grad_()
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(f_train @ w + b, train.labels).backward()
            opt.step()
    return float(((f_test @ w + b).argmax(1) == test.labels).float().mean())
