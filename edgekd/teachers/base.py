"""The one interface every teacher honours.

A teacher is frozen by default and runs under no_grad (and autocast on CUDA). It takes the same
normalized (B, 3, T, H, W) batch the student gets and converts internally (resize, re-normalize)
to what its own network expects, so distillation code never special-cases a teacher.

    embed(x)          -> (B, D)        clip embedding
    embed_temporal(x) -> (B, T', D)    per-time embeddings, or None where the teacher has no time axis
    logits(x)         -> (B, C)        class logits, once a classifier head is attached
    fingerprint       -> str           weights hash + config; keys the teacher output cache
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

import torch
from torch import nn

from edgekd.errors import TeacherError


def state_fingerprint(module: nn.Module, config: dict[str, Any]) -> str:
    """sha256 over the weights (names, shapes, bytes) and a JSON config, shortened to 16 hex digits."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class Teacher(nn.Module):
    embed_dim: int
    num_classes: int | None = None
    config: dict[str, Any]

    def __init__(self) -> None:
        super().__init__()
        self.head: nn.Module | None = None
        self._fingerprint: str | None = None

    # -- to implement -------------------------------------------------------------------------
    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _embed_temporal(self, x: torch.Tensor) -> torch.Tensor | None:
        return None

    # -- shared behaviour ---------------------------------------------------------------------
    def _context(self, x: torch.Tensor):
        if x.is_cuda:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()), self._context(x):
            return self._embed(x).float()

    def embed_temporal(self, x: torch.Tensor) -> torch.Tensor | None:
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()), self._context(x):
            out = self._embed_temporal(x)
        return None if out is None else out.float()

    def attach_head(self, head: nn.Module, num_classes: int) -> None:
        self.head = head
        self.num_classes = num_classes
        self._fingerprint = None

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            raise TeacherError(f"teacher {type(self).__name__} has no classifier head",
                               "fine-tune it first: `edgekd teacher finetune`")
        emb = self.embed(x)
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            return self.head(emb).float()

    def freeze(self) -> "Teacher":
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = state_fingerprint(self, {"type": type(self).__name__, **self.config})
        return self._fingerprint
