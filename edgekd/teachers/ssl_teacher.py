"""TimeBalance's two self-supervised teachers (Dave et al., CVPR 2023): the networks and their folder.

    build_ssl_teacher("invariant" | "distinctive", spec)   backbone + projection head g(.), untrained
    SSLTeacher.save(folder) / load_ssl_teacher(folder)      edgekd's teacher folder (teacher.json + weights.pt)

The teacher's embedding is the backbone's pooled feature; fine-tuning on the labeled split
(edgekd.pretrain.finetune) attaches the classifier. The projection head stays with the teacher:
Eq. 5 compares clips by z, which Sec. 3.1 defines as the projection head's output (see
edgekd.teachers.timebalance). Training them (L_I, Eq. 1; L_D, Eq. 3 + supplement D.2) is
edgekd.pretrain.ssl's job.

The teacher folder is edgekd's usual one (edgekd.teachers.loading: teacher.json + weights.pt, the
projection head's weights included under "projection."), so `load_teacher(folder)` reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError, TeacherError
from edgekd.io import atomic_folder
from edgekd.teachers.checkpoint_teacher import BackboneTeacher
from edgekd.teachers.embedded_vl import temporal_gradient

OBJECTIVES = ("invariant", "distinctive")
FRAME_INPUTS = ("rgb", "diff")
TYPE = "ssl-timebalance"
LOADER = "edgekd.teachers.ssl_teacher:from_folder"

Objective = Literal["invariant", "distinctive"]


class ProjectionHead(nn.Module):
    """g(.) of supplement B.1.2: Linear(D, 512) + BN + ReLU + Linear(512, 128, bias=False) + BN.

    The paper's widths are for D = 2048; for a narrower backbone the hidden width is min(512, D) and
    the output min(128, hidden) (for D = 512 this is the authors' own r3d_18 head, 512-512-128).
    """

    def __init__(self, in_dim: int, hidden: int | None = None, out_dim: int | None = None):
        super().__init__()
        hidden = hidden or min(512, in_dim)
        out_dim = out_dim or min(128, hidden)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden, bias=True), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim, bias=False), nn.BatchNorm1d(out_dim),
        )
        self.out_dim = out_dim

    def forward(self, f: torch.Tensor) -> torch.Tensor:  # (..., D) -> (..., d)
        return self.net(f.reshape(-1, f.shape[-1])).reshape(*f.shape[:-1], self.out_dim)


class SSLBackbone(nn.Module):
    """A student network fed either the RGB clips (the paper) or their temporal gradients.

    frames_in="diff" feeds the differences of consecutive frames (edgekd.teachers.embedded_vl's
    temporal_gradient): static appearance cancels and motion remains, which a small network trained
    for a few CPU minutes needs to pick up motion at all. The objectives are the same either way.
    """

    def __init__(self, net: nn.Module, frames_in: str = "rgb"):
        super().__init__()
        if frames_in not in FRAME_INPUTS:
            raise ConfigError(f"unknown frames_in {frames_in!r}", "choose " + " or ".join(FRAME_INPUTS))
        self.net, self.frames_in, self.feature_dim = net, frames_in, net.feature_dim

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_gradient(x) if self.frames_in == "diff" else x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:   # (B, 3, T, H, W) -> (B, D)
        return self.net.forward_features(self._input(x))

    def forward_temporal(self, x: torch.Tensor) -> torch.Tensor:   # (B, 3, T, H, W) -> (B, T', D)
        return self.net.forward_temporal(self._input(x))


class SSLTeacher(BackboneTeacher):
    """A TimeBalance teacher: embed = backbone.forward_features, embed_temporal = forward_temporal."""

    def __init__(self, backbone: nn.Module, spec: DataSpec, config: dict[str, Any],
                 projection: ProjectionHead | None = None, head: nn.Module | None = None,
                 num_classes: int | None = None, input_spec: DataSpec | None = None):
        super().__init__(backbone, backbone.feature_dim, spec, config, head, num_classes, input_spec)
        # kept in the folder for further pretraining, not part of the teacher (nor its fingerprint)
        self.__dict__["projection"] = projection

    @property
    def objective(self) -> str:
        return self.config["objective"]

    def save(self, folder: str | Path, metrics: dict[str, Any] | None = None,
             pretrain: dict[str, Any] | None = None) -> Path:
        """Write a teacher folder (loading.py's format) atomically: a temp folder renamed into place."""
        from edgekd.teachers.loading import write_teacher_folder

        state = dict(self.state_dict())
        if self.projection is not None:
            state.update({f"projection.{k}": v for k, v in self.projection.state_dict().items()})
        config = {"objective": self.objective, "backbone": self.config["backbone"],
                  "backbone_kwargs": self.config["backbone_kwargs"], "frames_in": self.config["frames_in"],
                  "embed_dim": self.embed_dim,
                  "train_spec": self.spec.to_dict(), "num_classes": self.num_classes,
                  "head": None if self.head is None else _head_layout(self.head), "pretrain": pretrain or {}}
        with atomic_folder(Path(folder)) as tmp:
            write_teacher_folder(tmp, type=TYPE, config=config, state_dict=state, data_spec=self.spec,
                                 metrics={"fingerprint": self.fingerprint, **(metrics or {})}, loader=LOADER)
        return Path(folder)


def _head_layout(head: nn.Module) -> dict[str, Any]:
    if isinstance(head, nn.Linear):
        return {"type": "linear", "in": head.in_features, "out": head.out_features}
    if isinstance(head, nn.Sequential) and all(isinstance(m, (nn.Linear, nn.Dropout)) for m in head) \
            and sum(isinstance(m, nn.Linear) for m in head) == 1 and isinstance(head[-1], nn.Linear):
        return {"type": "dropout_linear", "in": head[-1].in_features, "out": head[-1].out_features,
                "dropout": next((m.p for m in head if isinstance(m, nn.Dropout)), 0.0)}
    raise TeacherError(f"cannot save a {type(head).__name__} head in an SSL teacher folder",
                       "fine-tune with a linear head")


def _build_head(layout: dict[str, Any]) -> nn.Module:
    if layout["type"] == "linear":
        return nn.Linear(layout["in"], layout["out"])
    return nn.Sequential(nn.Dropout(layout["dropout"]), nn.Linear(layout["in"], layout["out"]))


def build_ssl_teacher(objective: Objective, spec: DataSpec, backbone: str = "tiny3d",
                      backbone_kwargs: dict[str, Any] | None = None, input_spec: DataSpec | None = None,
                      frames_in: str = "rgb") -> SSLTeacher:
    """A freshly initialised (untrained) teacher: backbone from the student registry + projection head."""
    from edgekd.students import build_student

    if objective not in OBJECTIVES:
        from edgekd.registry import did_you_mean
        raise ConfigError(f"unknown SSL objective {objective!r}", did_you_mean(objective, list(OBJECTIVES)))
    kwargs = dict(backbone_kwargs or {})
    net = build_student(backbone, num_classes=max(1, spec.num_classes), frames=spec.frames,
                        size=spec.size, **kwargs)
    net.head = nn.Identity()  # its classifier is meaningless here; fine-tuning attaches the teacher's own
    config = {"type": TYPE, "objective": objective, "backbone": backbone, "backbone_kwargs": kwargs,
              "frames_in": frames_in}
    return SSLTeacher(SSLBackbone(net, frames_in), spec, config, ProjectionHead(net.feature_dim),
                      input_spec=input_spec)


def from_folder(folder: Path, meta: dict[str, Any], data_spec: DataSpec | None) -> SSLTeacher:
    """The loader named in an SSL teacher's teacher.json (see edgekd.teachers.loading)."""
    from edgekd.teachers.loading import load_weights_into, read_teacher_weights

    cfg = meta["config"]
    teacher = build_ssl_teacher(cfg["objective"], DataSpec.from_dict(cfg["train_spec"]), cfg["backbone"],
                                cfg["backbone_kwargs"], data_spec, cfg.get("frames_in", "rgb"))
    state = read_teacher_weights(folder, meta)
    proj = {k.removeprefix("projection."): v for k, v in state.items() if k.startswith("projection.")}
    state = {k: v for k, v in state.items() if not k.startswith("projection.")}
    if cfg.get("head"):
        teacher.attach_head(_build_head(cfg["head"]), cfg["num_classes"])
    load_weights_into(teacher, state, folder)
    if proj:
        load_weights_into(teacher.projection, proj, folder)
    teacher.source = str(folder)
    teacher.metrics = meta.get("metrics", {})
    return teacher.freeze()


def load_ssl_teacher(folder: str | Path, data_spec: DataSpec | None = None) -> SSLTeacher:
    """Rebuild a teacher written by `edgekd.pretrain.ssl.pretrain_ssl`; `data_spec` is the run's input (None: its own)."""
    from edgekd.teachers.loading import load_teacher_folder

    teacher = load_teacher_folder(folder, data_spec)
    if not isinstance(teacher, SSLTeacher):
        raise TeacherError(f"{folder} holds a {type(teacher).__name__}, not a TimeBalance SSL teacher",
                           "pass a folder written by `edgekd teacher pretrain --objective invariant|distinctive`")
    return teacher
