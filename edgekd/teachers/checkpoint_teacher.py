"""Any trained video network as a teacher: edgekd student checkpoints and torchvision video models.

This is the cross-architecture distillation of Camarena et al.: the teacher's architecture need not
match the student's, only its outputs are imitated. `BackboneTeacher` wraps a network with
`forward_features(x) -> (B, D)` (and optionally `forward_temporal(x) -> (B, T', D)`) plus a
classifier head; it also carries the input the network was trained on (frames, size, mean, std) and
converts the run's normalized batch to it, so any teacher takes any student's batch.

Specs understood by `load_checkpoint_teacher`:
    runs/NAME  or  runs/NAME/checkpoint.pt          an edgekd student checkpoint
    torchvision:r3d_18:path/to/weights.pth           a torchvision video model with a local state_dict
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.data.spec import DataSpec
from edgekd.errors import CheckpointError, TeacherError
from edgekd.io import load_torch_file
from edgekd.teachers.base import Teacher

TORCHVISION_PREFIX = "torchvision:"


def adapt_input(x: torch.Tensor, src: DataSpec | None, dst: DataSpec) -> torch.Tensor:
    """A batch normalized for `src` (the run) -> the frames, size and normalization of `dst`.

    x: (B, 3, T, H, W) -> (B, 3, dst.frames, dst.size, dst.size). `src=None` means x already fits.
    """
    if src is not None and (tuple(src.mean), tuple(src.std)) != (tuple(dst.mean), tuple(dst.std)):
        shape = (1, 3, 1, 1, 1)
        m0, s0 = (torch.tensor(v, dtype=x.dtype, device=x.device).view(shape) for v in (src.mean, src.std))
        m1, s1 = (torch.tensor(v, dtype=x.dtype, device=x.device).view(shape) for v in (dst.mean, dst.std))
        x = (x * s0 + m0 - m1) / s1                                     # un-normalize, re-normalize
    if tuple(x.shape[2:]) != (dst.frames, dst.size, dst.size):
        x = F.interpolate(x, size=(dst.frames, dst.size, dst.size), mode="trilinear", align_corners=False)
    return x


class BackboneTeacher(Teacher):
    """A frozen network + optional classifier head, fed through `adapt_input`.

    backbone: nn.Module with forward_features (and forward_temporal where it has a time axis).
    spec: the DataSpec the backbone was trained on; `input_spec` the run's (None = same as spec).
    """

    def __init__(self, backbone: nn.Module, embed_dim: int, spec: DataSpec, config: dict[str, Any],
                 head: nn.Module | None = None, num_classes: int | None = None,
                 input_spec: DataSpec | None = None):
        super().__init__()
        self.backbone = backbone
        self.embed_dim = embed_dim
        self.spec = spec
        self.input_spec = input_spec
        self.config = {**config, "spec": spec.to_dict()}
        if head is not None:
            self.attach_head(head, num_classes if num_classes is not None else _out_features(head))
        self.freeze()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(adapt_input(x, self.input_spec, self.spec))  # (B, D)

    def _embed_temporal(self, x: torch.Tensor) -> torch.Tensor | None:
        if not hasattr(self.backbone, "forward_temporal"):
            return None
        return self.backbone.forward_temporal(adapt_input(x, self.input_spec, self.spec))  # (B, T', D)


def _out_features(head: nn.Module) -> int:
    linear = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise TeacherError(f"cannot tell the number of classes of head {type(head).__name__}",
                           "pass num_classes explicitly")
    return linear[-1].out_features


# -- edgekd student checkpoints ------------------------------------------------------------------

def student_checkpoint_teacher(path: str | Path, data_spec: DataSpec | None = None) -> BackboneTeacher:
    """An edgekd checkpoint (run folder or checkpoint.pt) as a teacher: logits from its own head."""
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint

    ckpt = load_checkpoint(path)
    model, spec = build_student_from_checkpoint(ckpt)
    head, model.head = model.head, nn.Identity()   # the teacher owns the head; the backbone embeds
    config = {"kind": "checkpoint", "student": ckpt["student"]["name"],
              "kwargs": ckpt["student"]["kwargs"]}
    return BackboneTeacher(model, model.feature_dim, spec, config, head, spec.num_classes, data_spec)


# -- torchvision video models --------------------------------------------------------------------

class _TorchvisionBackbone(nn.Module):
    """forward_features (and forward_temporal for the ResNet family) of a headless torchvision model."""

    def __init__(self, model: nn.Module, resnet: bool):
        super().__init__()
        self.model = model
        if resnet:
            self.forward_temporal = self._forward_temporal  # only VideoResNet keeps a clean time axis

    def _forward_temporal(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m.layer4(m.layer3(m.layer2(m.layer1(m.stem(x)))))  # (B, 512, T', H', W')
        return x.mean(dim=(3, 4)).transpose(1, 2)                # (B, T', 512)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out.flatten(2).mean(-1) if out.dim() > 2 else out  # s3d leaves (B, D, T', 1, 1)


def _split_head(name: str, model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """Detach the classifier of a torchvision video model; returns (headless model, Linear head)."""
    if hasattr(model, "fc"):                                   # r3d_18, mc3_18, r2plus1d_18
        head, model.fc = model.fc, nn.Identity()
    elif hasattr(model, "classifier"):                         # s3d: Dropout + Conv3d 1x1x1
        conv = model.classifier[-1]
        head = nn.Linear(conv.in_channels, conv.out_channels)
        head.weight.data.copy_(conv.weight.data.flatten(1))
        head.bias.data.copy_(conv.bias.data)
        model.classifier = nn.Identity()                       # forward then means over (T', H', W')
    elif hasattr(model, "head"):                               # mvit (Dropout + Linear), swin3d (Linear)
        head = model.head[-1] if isinstance(model.head, nn.Sequential) else model.head
        model.head = nn.Identity()
    else:
        raise TeacherError(f"torchvision model {name!r} has no classifier edgekd knows how to detach")
    return model, head


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise TeacherError(f"no weights file at {path}",
                           "save the model's state_dict there (torch.save(model.state_dict(), path)); "
                           "nothing is downloaded")
    obj = load_torch_file(path, TeacherError, "a weights file",
                          "point at a state_dict saved with torch.save(model.state_dict(), path)")
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise TeacherError(f"{path} holds no state_dict", "save it with torch.save(model.state_dict(), path)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _load_torchvision(tv, name: str, num_classes: int, state: dict[str, torch.Tensor], weights: Path) -> nn.Module:
    """Build the model without its random init (on the meta device) and take the file's tensors."""
    with torch.device("meta"):
        model = tv.models.get_model(name, weights=None, num_classes=num_classes)
    try:
        model.load_state_dict(state, assign=True)
    except RuntimeError as e:
        raise TeacherError(f"{weights} does not fit torchvision {name}: {str(e).splitlines()[0]}",
                           f"pass weights saved from a {name} model") from e
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        model = tv.models.get_model(name, weights=None, num_classes=num_classes)   # a buffer the file lacks
        model.load_state_dict(state)
    return model.eval()


def torchvision_teacher(name: str, weights: str | Path, data_spec: DataSpec | None = None) -> BackboneTeacher:
    """A torchvision video model (`torchvision.models.video`) with weights from a local file."""
    from edgekd.compat.torchvision import import_torchvision
    from edgekd.registry import did_you_mean

    tv = import_torchvision()
    names = tv.models.list_models(module=tv.models.video)
    if name not in names:
        raise TeacherError(f"unknown torchvision video model {name!r}", did_you_mean(name, names))
    state = _read_state_dict(Path(weights))
    classifier = [v for k, v in state.items() if k.split(".")[0] in ("fc", "head", "classifier")
                  and k.endswith("weight")]
    if not classifier:
        raise TeacherError(f"{weights} has no classifier weights for {name}",
                           f"the file must be a full {name} state_dict (fc/head/classifier included)")
    num_classes = classifier[-1].shape[0]
    model = _load_torchvision(tv, name, num_classes, state, Path(weights))

    # what the model was trained on: torchvision's own preset (no download, only metadata)
    meta = tv.models.get_model_weights(name).DEFAULT
    preset = meta.transforms()
    frames = 16 if meta.meta.get("min_temporal_size", 1) > 1 else (data_spec.frames if data_spec else 16)
    class_names = tuple(data_spec.class_names) if data_spec and data_spec.num_classes == num_classes \
        else tuple(f"class_{i}" for i in range(num_classes))
    spec = DataSpec(frames=frames, size=preset.crop_size[0], class_names=class_names,
                    mean=tuple(preset.mean), std=tuple(preset.std))
    model, head = _split_head(name, model)
    backbone = _TorchvisionBackbone(model, resnet=hasattr(model, "layer4"))
    config = {"kind": "torchvision", "model": name}
    return BackboneTeacher(backbone, head.in_features, spec, config, head, num_classes, data_spec)


def load_checkpoint_teacher(spec: str | Path, data_spec: DataSpec | None = None) -> BackboneTeacher:
    """`torchvision:NAME:WEIGHTS` or an edgekd checkpoint path -> teacher (see the module docstring)."""
    text = str(spec)
    if text.startswith(TORCHVISION_PREFIX):
        parts = text[len(TORCHVISION_PREFIX):].split(":", 1)
        if len(parts) != 2 or not all(parts):
            raise TeacherError(f"teacher spec {text!r} is incomplete",
                               "write torchvision:NAME:PATH, e.g. torchvision:r3d_18:weights/r3d_18.pth")
        return torchvision_teacher(parts[0], parts[1], data_spec)
    try:
        return student_checkpoint_teacher(text, data_spec)
    except CheckpointError as e:
        raise TeacherError(f"teacher {text}: {e.message}", e.hint) from e
