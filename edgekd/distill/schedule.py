"""Learning-rate schedule: linear warm-up, then cosine decay, plateau halving or constant.

    cosine    lr(s) = lr * [min + (1 - min) * (1 + cos(pi * progress)) / 2] after warm-up
    plateau   lr * scale, scale halves when the epoch's mean train loss has not improved for
              `patience` epochs (TimeBalance Supp. B.2: "drops the learning rate to its half value
              on a loss plateau", after a 10-epoch linear warm-up)
    constant  lr after warm-up

Two-stage recipes restart the schedule (warm-up included) at stage 2, as the VL paper trains its
two stages separately. The state is a few numbers, saved in the checkpoint for exact resume.
"""

from __future__ import annotations

import math

from edgekd.distill.config import OptimConfig


class Schedule:
    def __init__(self, cfg: OptimConfig, steps_per_epoch: int, epochs: int, restart_epoch: int = 0):
        self.cfg = cfg
        self.spe = steps_per_epoch
        self.epochs = epochs
        self.restart_epoch = restart_epoch  # first epoch of stage 2 (0: one stage)
        self.scale = 1.0  # plateau multiplier
        self.best = math.inf
        self.bad_epochs = 0

    def _phase(self, step: int) -> tuple[int, int]:
        """(step within the current stage, steps in that stage)."""
        boundary = self.restart_epoch * self.spe
        if self.restart_epoch and step >= boundary:
            return step - boundary, (self.epochs - self.restart_epoch) * self.spe
        return step, (self.restart_epoch or self.epochs) * self.spe

    def lr(self, step: int) -> float:
        c = self.cfg
        s, total = self._phase(step)
        warm = min(int(round(c.warmup_epochs * self.spe)), max(total - 1, 0))
        if s < warm:
            return c.lr * (s + 1) / (warm + 1)
        if c.schedule == "cosine":
            progress = (s - warm) / max(1, total - warm)
            return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
        if c.schedule == "plateau":
            return c.lr * self.scale
        return c.lr

    def epoch_end(self, epoch: int, train_loss: float) -> None:
        """Plateau bookkeeping after each epoch (a no-op for the other schedules)."""
        if epoch + 1 == self.restart_epoch:  # stage 2 starts fresh
            self.scale, self.best, self.bad_epochs = 1.0, math.inf, 0
            return
        stage_epoch = epoch - self.restart_epoch if self.restart_epoch and epoch >= self.restart_epoch else epoch
        if self.cfg.schedule != "plateau" or stage_epoch + 1 <= self.cfg.warmup_epochs:
            return
        if train_loss < self.best * (1 - 1e-4):
            self.best, self.bad_epochs = train_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.cfg.plateau_patience:
                self.scale *= self.cfg.plateau_factor
                self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, d: dict) -> None:
        self.scale, self.best, self.bad_epochs = float(d["scale"]), float(d["best"]), int(d["bad_epochs"])
