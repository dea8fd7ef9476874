"""Hugging Face video models as teachers: VideoMAE, TimeSformer, ViViT, V-JEPA 2 (local folders only).

One row per family in FAMILIES names the two transformers classes (the bare encoder and the
video-classification model), the config keys holding the model's clip length and frame size, and
the name of its pixel argument. Which class a folder holds comes from config.json's "architectures".

The teacher sees its own input: the run's clip (B, 3, T, H, W) is un-normalized, `num_frames` frames
are picked uniformly over the same span (first and last frame kept), resized to the model's size and
normalized with the model's mean/std (preprocessor_config.json, else the config and ImageNet stats).

    embed(x)   the features the classifier reads (classification models: the classifier's input) or,
               for a bare encoder, the mean of its last hidden states; (B, hidden_size)
    logits(x)  the model's own classifier, attached only when its labels are the data's classes;
               otherwise the distill run fits a head on the labeled split (edgekd.pretrain.heads)

Inference runs under torch.inference_mode, `chunk` clips at a time (bounds activation memory), and
in float16 autocast on CUDA (base.Teacher).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import torch

from edgekd.data.spec import DataSpec
from edgekd.errors import TeacherError
from edgekd.teachers.base import Teacher
from edgekd.teachers.vl_base import model_frames

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")


@dataclasses.dataclass(frozen=True)
class Family:
    encoder: str               # transformers class of the bare (self-supervised) encoder
    classifier: str            # ... of the video-classification model
    frames_key: str            # config key: frames per clip
    size_key: str              # config key: frame size
    pixels: str = "pixel_values"
    encoder_extra: tuple = ()  # further forward kwargs of the bare encoder, (name, value) pairs


FAMILIES = {
    "videomae": Family("VideoMAEModel", "VideoMAEForVideoClassification", "num_frames", "image_size"),
    "timesformer": Family("TimesformerModel", "TimesformerForVideoClassification", "num_frames", "image_size"),
    "vivit": Family("VivitModel", "VivitForVideoClassification", "num_frames", "image_size"),
    "vjepa2": Family("VJEPA2Model", "VJEPA2ForVideoClassification", "frames_per_clip", "crop_size",
                     pixels="pixel_values_videos", encoder_extra=(("skip_predictor", True),)),
}


def _norm_name(name: str) -> str:
    return " ".join(str(name).lower().replace("_", " ").split())


def preprocess(folder: Path, config) -> tuple[int, tuple, tuple]:
    """(frame size, mean, std): the preprocessor file's crop size and stats, else the model config's size."""
    from edgekd.teachers.hf_folder import preprocessor_stats

    size = getattr(config, FAMILIES[config.model_type].size_key)
    return preprocessor_stats(folder, size, IMAGENET_MEAN, IMAGENET_STD, files=PREPROCESSOR_FILES)


class HFVideoTeacher(Teacher):
    """A transformers video model (see FAMILIES) applied to the run's clips at its own input."""

    def __init__(self, model, data_spec: DataSpec, config: dict[str, Any], *, image_size: int,
                 mean, std, chunk: int = 8):
        super().__init__()
        family = FAMILIES[model.config.model_type]
        self.model, self.family, self.data_spec, self.chunk = model, family, data_spec, max(1, int(chunk))
        self.num_frames = int(getattr(model.config, family.frames_key))
        self.image_size, self.mean, self.std = image_size, tuple(mean), tuple(std)
        classifier = getattr(model, "classifier", None)
        self.embed_dim = int(classifier.in_features if classifier is not None else model.config.hidden_size)
        self.model_labels = ([model.config.id2label[i] for i in range(len(model.config.id2label))]
                             if classifier is not None else None)
        self.config = {**config, "num_frames": self.num_frames, "image_size": image_size,
                       "mean": list(self.mean), "std": list(self.std)}
        if self.model_labels and [_norm_name(n) for n in self.model_labels] == \
                [_norm_name(n) for n in data_spec.class_names]:
            self.attach_head(classifier, len(self.model_labels))      # its own labels are the data's
            self.head_source = f"its own classifier ({len(self.model_labels)} classes)"
        self.freeze()

    def teacher_input(self, x: torch.Tensor) -> torch.Tensor:
        """The run's clips -> what the model takes: (B, num_frames, 3, S, S), the model's mean/std."""
        return model_frames(x, self.data_spec, self.image_size, self.mean, self.std, self.num_frames)

    def _features(self, pixels: torch.Tensor) -> torch.Tensor:
        classifier = getattr(self.model, "classifier", None)
        if classifier is None:                                         # bare encoder: mean of its tokens
            return self.model(pixels, **dict(self.family.encoder_extra)).last_hidden_state.mean(1)
        kwargs = {self.family.pixels: pixels}
        seen = []
        hook = classifier.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        try:
            self.model(**kwargs)
        finally:
            hook.remove()
        return seen[0]

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        pixels = self.teacher_input(x)
        grad = torch.is_grad_enabled()
        with contextlib.nullcontext() if grad else torch.inference_mode():
            out = torch.cat([self._features(c) for c in pixels.split(self.chunk)])
        return out if grad else out.clone()  # a normal tensor: losses may save it for backward


def load_hf_video(folder: Path, model_type: str, data_spec: DataSpec, **opts) -> HFVideoTeacher:
    """A local save_pretrained folder of one of the FAMILIES (bare encoder or video classifier)."""
    from edgekd.io import read_json
    from edgekd.teachers.hf_folder import hf_model

    family = FAMILIES[model_type]
    archs = read_json(folder / "config.json", TeacherError, "fix or replace config.json").get("architectures") or []
    class_name = family.classifier if family.classifier in archs else family.encoder
    model = hf_model(folder, class_name)
    size, mean, std = preprocess(folder, model.config)
    opts.pop("pooling", None)
    opts.pop("num_frames", None)
    config = {"source": f"hf_{model_type}", "class": class_name, "folder": folder.name}
    return HFVideoTeacher(model, data_spec, config, image_size=size, mean=mean, std=std, **opts)
