"""The PCL objective (Tao et al., "Pretext-Contrastive Learning"), as Camarena et al. train every
network of their study: teachers from scratch, students with a teacher's guidance on top
(edgekd.pretrain.pcl). Camarena Sec. 2.2 and Sec. 3, Fig. 2:

    pretext       "which transformation was done to the input video": cross-entropy over TRANSFORMS
    contrastive   instance contrast of two views of each video through a small perceptron head
    L_PCL = w_p * CE(pretext logits, transformation) + w_c * L_contrast

    PCLNet(backbone)              registered student without its classifier + pretext head + projection head
    transform_clips(x, labels)    apply transformation labels[i] to clip i
    pcl_loss(net, views, gen)     one batch of two views per video -> (loss terms, pretext logits, labels)
    save_pcl / load_pcl           an edgekd teacher folder (type "ssl-pcl"), so `load_teacher`,
                                  `--teacher PATH` and `student.init` all read it

The transformation set. Every transformation is a permutation of the clip's own T frames:

    original          0 1 2 3 4 5 6 7
    halves_swapped    4 5 6 7 0 1 2 3      the clip's two segments played in the wrong order
    quarters_swapped  2 3 0 1 6 7 4 5      each half's two segments played in the wrong order
    double_speed      0 2 4 6 1 3 5 7      each half played at twice the speed (frame skipping)

so a clip carries the same frames under every label and only their ORDER tells the label: a
single frame, or any order-free summary of the frames (their mean, a bag of frames), has the same
distribution whatever the transformation, and a network must relate frames across time (find the
jumps, the speed) to answer. Spatial transformations such as rotation were left out for that
reason: one rotated frame shows its rotation. Temporal reversal was left out too, although PCL-style
work uses it: in action data whose classes come in time-reversed pairs (move left / right, grow /
shrink, rotate cw / ccw: 10 of the 12 synthetic classes) a reversed clip of one class IS an original
clip of the other, so the label is undecidable and the pretext task would teach the network to
ignore direction, the very thing those classes differ by. Needs T >= 4 frames.

The contrastive term is TimeBalance's L_I (edgekd.teachers.losses.invariant_loss) with n = 2: the
two views of a video (two random clips, each augmented independently, shown with the SAME
transformation) attract, every other video in the batch repels, a softmax over cos / tau. Sharing
the transformation keeps the two terms complementary (PCL's point): the contrastive term never asks
the features to be invariant to the frame order the pretext term asks them to see. The projection
head is the two-layer perceptron (Linear-BN-ReLU-Linear-BN) of the TimeBalance teachers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError, TeacherError
from edgekd.teachers.losses import DEFAULT_TAU, invariant_loss
from edgekd.io import atomic_folder
from edgekd.teachers.ssl_teacher import ProjectionHead, SSLBackbone, SSLTeacher

TRANSFORMS = ("original", "halves_swapped", "quarters_swapped", "double_speed")
TYPE = "ssl-pcl"
LOADER = "edgekd.teachers.pcl:from_folder"
MIN_FRAMES = 4


def frame_order(name: str, frames: int) -> list[int]:
    """The frame indices a transformation shows, in order (see the module docstring)."""
    t = list(range(frames))
    h, q1, q3 = frames // 2, frames // 4, frames // 2 + (frames - frames // 2) // 2
    orders = {"original": t, "halves_swapped": t[h:] + t[:h],
              "quarters_swapped": t[q1:h] + t[:q1] + t[q3:] + t[h:q3], "double_speed": t[0::2] + t[1::2]}
    return orders[name]


def frame_orders(frames: int) -> torch.Tensor:
    """(K, T) index table, row k = TRANSFORMS[k]; refuses clips too short to tell them apart."""
    if frames < MIN_FRAMES:
        raise ConfigError(f"the PCL pretext task needs clips of >= {MIN_FRAMES} frames, got {frames}",
                          f"use --frames {MIN_FRAMES} or more")
    return torch.tensor([frame_order(name, frames) for name in TRANSFORMS])


def transform_clips(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Clip i shown with transformation labels[i]: (N, C, T, H, W), (N,) -> (N, C, T, H, W)."""
    N, C, T, H, W = x.shape
    order = frame_orders(T).to(x.device)[labels]                   # (N, T)
    index = order.view(N, 1, T, 1, 1).expand(N, C, T, H, W)
    return x.gather(2, index)


class PCLNet(nn.Module):
    """backbone (a registered student, classifier removed) -> features (B, D);
    pretext head Linear(D, K) -> transformation logits (B, K); projection head -> z (B, d)."""

    def __init__(self, backbone: SSLBackbone, num_transforms: int = len(TRANSFORMS)):
        super().__init__()
        self.backbone = backbone
        self.pretext = nn.Linear(backbone.feature_dim, num_transforms)
        self.projection = ProjectionHead(backbone.feature_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.backbone.forward_features(x)                       # (B, D)
        return self.pretext(f), self.projection(f)                  # (B, K), (B, d)


def build_pcl(backbone: str, backbone_kwargs: dict[str, Any], spec: DataSpec) -> PCLNet:
    from edgekd.students import build_student

    net = build_student(backbone, num_classes=1, frames=spec.frames, size=spec.size, **backbone_kwargs)
    net.head = nn.Identity()  # the downstream classifier is trained later, on labels
    return PCLNet(SSLBackbone(net, "rgb"))


def random_transforms(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, len(TRANSFORMS), (n,), generator=generator)


def pcl_loss(net: PCLNet, views: torch.Tensor, generator: torch.Generator, tau: float = DEFAULT_TAU,
             pretext_weight: float = 1.0, contrast_weight: float = 1.0):
    """L_PCL on (B, 2, C, T, H, W) views (two clips per video, already augmented).

    Each video gets one random transformation, shown in both its views. Returns (terms, shown clips (2B, ...), labels (2B,),
    pretext logits (2B, K)): terms = {"pretext", "contrast", "loss"}; the clips and logits serve the
    KD term of edgekd.pretrain.pcl, which feeds the teacher the very clips the student saw.
    """
    B, n = views.shape[:2]
    flat = views.flatten(0, 1)                                      # (2B, C, T, H, W): video-major
    labels = random_transforms(B, generator).to(flat.device).repeat_interleave(n)  # (2B,): one per video
    shown = transform_clips(flat, labels)
    logits, z = net(shown)
    pretext = F.cross_entropy(logits.float(), labels)
    contrast = invariant_loss(z.reshape(B, n, -1), tau)
    terms = {"pretext": pretext, "contrast": contrast, "loss": pretext_weight * pretext + contrast_weight * contrast}
    return terms, shown, labels, logits


# -- the folder --------------------------------------------------------------------------------

def save_pcl(net: PCLNet, folder: str | Path, spec: DataSpec, backbone: str, backbone_kwargs: dict[str, Any],
             pretrain: dict[str, Any], metrics: dict[str, Any]) -> Path:
    """Write `folder` atomically as an edgekd teacher folder; weights under backbone.net.,
    pretext. and projection. (the layout the TimeBalance teachers and student.init use)."""
    from edgekd.teachers.loading import write_teacher_folder

    config = {"objective": "pcl", "backbone": backbone, "backbone_kwargs": dict(backbone_kwargs),
              "frames_in": "rgb", "embed_dim": net.backbone.feature_dim, "train_spec": spec.to_dict(),
              "transforms": list(TRANSFORMS), "pretrain": pretrain}
    with atomic_folder(Path(folder)) as tmp:
        write_teacher_folder(tmp, type=TYPE, config=config, state_dict=net.state_dict(), data_spec=spec,
                             metrics=metrics, loader=LOADER)
    return Path(folder)


def load_pcl(folder: str | Path) -> tuple[PCLNet, DataSpec, dict[str, Any]]:
    """(network in eval mode, the DataSpec it was trained on, teacher.json) from a PCL folder."""
    from edgekd.teachers.loading import load_weights_into, read_teacher_meta, read_teacher_weights

    folder, meta = read_teacher_meta(folder)
    cfg = meta.get("config") or {}
    if meta.get("type") != TYPE:
        raise TeacherError(f"{folder} holds a {meta.get('type')!r} teacher, not a PCL one (no pretext head)",
                           "pass a folder written by `edgekd teacher pretrain --objective pcl` or `edgekd pretrain`")
    if list(cfg.get("transforms", [])) != list(TRANSFORMS):
        raise TeacherError(f"{folder} was trained on the transformations {cfg.get('transforms')}, "
                           f"this edgekd uses {list(TRANSFORMS)}", "pretrain the teacher again with this edgekd")
    spec = DataSpec.from_dict(cfg["train_spec"])
    net = build_pcl(cfg["backbone"], cfg.get("backbone_kwargs") or {}, spec)
    load_weights_into(net, read_teacher_weights(folder, meta), folder)
    return net.eval(), spec, meta


def from_folder(folder: Path, meta: dict[str, Any], data_spec: DataSpec | None) -> SSLTeacher:
    """The loader named in a PCL teacher.json: the backbone as an embedding teacher (load_teacher)."""
    net, spec, _ = load_pcl(folder)
    config = {"type": TYPE, "objective": "pcl", "backbone": meta["config"]["backbone"],
              "backbone_kwargs": meta["config"].get("backbone_kwargs") or {}, "frames_in": "rgb"}
    teacher = SSLTeacher(net.backbone, spec, config, net.projection, input_spec=data_spec)
    teacher.source = str(folder)
    teacher.metrics = meta.get("metrics", {})
    return teacher.freeze()
