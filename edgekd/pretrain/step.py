"""The one optimizer step every pretraining loop takes, and the running loss it keeps.

    step = OptimizerStep(opt, "vl pretraining", "lower the learning rate (lr=...)")
    step(loss, n=len(x))            finite check, zero_grad, backward, step; returns loss.item()
    step.ema / step.last            the smoothed / latest loss;  step.epoch_means() per-term epoch means
    set_lr(opt, lr)                 warm-up and schedules that set the rate per step
    no_step_error(what, videos, b)  the DataError when a loop took no step at all
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

from edgekd.errors import DataError, TrainingDiverged


class OptimizerStep:
    """Calls to it are the loop's optimizer steps; `steps` counts them.

    ema_weight: the weight of the newest loss in the exponential moving average `ema`.
    """

    def __init__(self, opt: torch.optim.Optimizer, what: str, hint: str, ema_weight: float = 0.1):
        self.opt, self.what, self.hint, self.ema_weight = opt, what, hint, ema_weight
        self.steps, self.last, self.ema = 0, float("nan"), None
        self._sums: dict[str, float] = {}
        self._count = 0

    def __call__(self, loss: torch.Tensor, n: int = 1, terms: Mapping[str, torch.Tensor] | None = None) -> float:
        """One step on `loss`, a batch of n items; `terms` (default {"loss": loss}) join the epoch means."""
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(f"{self.what} diverged at step {self.steps + 1}: the loss became {value}", self.hint)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.steps += 1
        self.last = value
        self.ema = value if self.ema is None else (1 - self.ema_weight) * self.ema + self.ema_weight * value
        for k, v in (terms or {"loss": loss}).items():
            self._sums[k] = self._sums.get(k, 0.0) + v.item() * n
        self._count += n
        return value

    @property
    def running(self) -> float:
        """The epoch's mean loss so far (weighted by batch size)."""
        return self._sums.get("loss", 0.0) / max(self._count, 1)

    def epoch_means(self) -> dict[str, float]:
        """Per-term means over the epoch's items, then a fresh epoch."""
        means = {k: v / max(self._count, 1) for k, v in self._sums.items()}
        self._sums, self._count = {}, 0
        return means


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def no_step_error(what: str, videos, batch_size: int) -> DataError:
    """`what` (a training loop) took no optimizer step on `videos` (a Manifest): say how many decode."""
    ok = sum(str(e.path) not in videos.skipped for e in videos.entries)
    short = f", fewer than one batch of {batch_size}" if ok else ""
    return DataError(f"{what} took no optimizer step: {ok} of its {len(videos.entries)} videos decode{short}",
                     "fix or remove the broken videos (`edgekd data check`), or use more videos")
