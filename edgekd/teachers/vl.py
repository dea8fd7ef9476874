"""CLIP-style teachers loaded from local files only: open_clip checkpoints, Hugging Face CLIP and X-CLIP.

Nothing is ever downloaded: hub access is switched off before transformers/open_clip load, model
names are looked up in the libraries' built-in configs, and weights must already sit on disk.

    open_clip   `load_open_clip("ViT-B-32", "/models/vit_b_32.pt")`: a built-in architecture name, or
                a model-config JSON in open_clip's format ({"embed_dim", "vision_cfg", "text_cfg"};
                the file's stem becomes the architecture name), plus a .pt/.pth/.bin/.safetensors file;
                or `load_open_clip_dir(dir)`: a folder holding open_clip_config.json and the weights
                (the layout of open_clip models on the Hugging Face hub).
    HF CLIP     `load_hf_dir(dir)`: a `CLIPModel.save_pretrained` folder (config.json with
                model_type "clip", weights, tokenizer files, optional preprocessor_config.json).
    HF X-CLIP   `load_hf_dir(dir)` with model_type "xclip": a video model (frames -> cross-frame
                transformer), whose class prompts are conditioned on the video (Ni et al. 2022).

CLIP models are applied frame-wise (`FramewiseVLTeacher`); X-CLIP sees its `num_frames` frames at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from edgekd.data.spec import DataSpec
from edgekd.errors import TeacherError
from edgekd.io import read_json
from edgekd.registry import did_you_mean
from edgekd.teachers.hf_folder import as_size, first_line, hf_model, preprocessor_stats
from edgekd.teachers.text import DEFAULT_TEMPLATES, prepare_offline, render_prompts
from edgekd.teachers.vl_base import (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, FramewiseVLTeacher,
                                     VisionLanguageTeacher, model_frames)

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                   "pytorch_model.bin.index.json")
HF_MODEL_TYPES = {"clip": "CLIPModel", "xclip": "XCLIPModel"}
WEIGHTS_HINT = ("edgekd never downloads weights: copy them onto this machine (e.g. from a machine with "
                "internet access) and pass their local path")


# -- open_clip ------------------------------------------------------------------------------------

def _import_open_clip():
    prepare_offline()
    try:
        import open_clip
    except ImportError as e:
        raise TeacherError("open_clip checkpoints need the open_clip_torch package",
                           "pip install open_clip_torch (or edgekd[vl])") from e
    return open_clip


class OpenCLIPTeacher(FramewiseVLTeacher):
    """An open_clip CLIP model (image + text towers) applied frame-wise."""

    def __init__(self, model, tokenizer, data_spec: DataSpec, config: dict[str, Any], **opts):
        visual = model.visual
        pp = getattr(visual, "preprocess_cfg", None) or {  # open_clip < 2.24 keeps separate attributes
            "size": visual.image_size, "mean": getattr(visual, "image_mean", None) or OPENAI_CLIP_MEAN,
            "std": getattr(visual, "image_std", None) or OPENAI_CLIP_STD}
        image_size = as_size(pp.get("size", 224))
        with torch.no_grad():  # the joint-space width, whatever the tower types
            embed_dim = int(model.encode_image(torch.zeros(1, 3, image_size, image_size)).shape[-1])
        super().__init__(data_spec, embed_dim=embed_dim, image_size=image_size,
                         mean=pp.get("mean", OPENAI_CLIP_MEAN), std=pp.get("std", OPENAI_CLIP_STD),
                         config=config, **opts)
        self.model = model
        self.tokenizer = tokenizer
        self.logit_scale = float(model.logit_scale.exp().item())
        self.freeze()

    def _encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def _encode_text_raw(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self._device())
        return self.model.encode_text(tokens)


def _open_clip_arch(open_clip, model: str) -> str:
    """A built-in architecture name, or a model-config JSON registered under its stem."""
    path = Path(model)
    if path.suffix == ".json":
        if not path.is_file():
            raise TeacherError(f"open_clip model config {path} does not exist",
                               "pass a built-in architecture name (e.g. ViT-B-32) or an existing config .json")
        cfg = read_json(path, TeacherError, "fix the config file")
        if "model_cfg" in cfg:
            raise TeacherError(f"{path} is an open_clip_config.json (hub layout)",
                               "pass the folder that holds it and the weights as the teacher instead")
        missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in cfg]
        if missing:
            raise TeacherError(f"{path} is not an open_clip model config (missing {', '.join(missing)})",
                               "an open_clip config has embed_dim, vision_cfg and text_cfg")
        open_clip.add_model_config(path)
        return path.stem
    if model not in open_clip.list_models():
        raise TeacherError(f"unknown open_clip architecture {model!r}",
                           did_you_mean(model, open_clip.list_models())
                           + " (or pass an open_clip model-config .json)")
    return model


def load_open_clip(model: str, weights: str | Path, data_spec: DataSpec, **opts) -> OpenCLIPTeacher:
    """An open_clip architecture (name or config .json) with weights from a local file."""
    open_clip = _import_open_clip()
    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise TeacherError(f"no open_clip weights at {weights}",
                           f"put the checkpoint file ({'/'.join(WEIGHT_SUFFIXES)}) for {model} at that path; "
                           + WEIGHTS_HINT)
    arch = _open_clip_arch(open_clip, model)
    try:
        net = open_clip.create_model(arch, pretrained=str(weights), device="cpu", pretrained_hf=False)
    except Exception as e:  # noqa: BLE001 - torch/safetensors raise many types for bad files
        raise TeacherError(f"weights {weights} do not fit open_clip architecture {arch!r}: {first_line(e)}",
                           "pass the architecture the checkpoint was trained with") from e
    try:
        tokenizer = open_clip.get_tokenizer(arch)
    except Exception as e:  # noqa: BLE001
        raise TeacherError(f"the tokenizer of open_clip {arch!r} is not available offline: {first_line(e)}",
                           "use an architecture with open_clip's built-in tokenizer, or the folder form "
                           "with the tokenizer files next to open_clip_config.json") from e
    config = {"source": "open_clip", "arch": arch, "weights": weights.name}
    return OpenCLIPTeacher(net.eval(), tokenizer, data_spec, config, **opts)


def load_open_clip_dir(folder: str | Path, data_spec: DataSpec, **opts) -> OpenCLIPTeacher:
    """A folder with open_clip_config.json and its weights (open_clip's hub layout, copied locally)."""
    open_clip = _import_open_clip()
    folder = Path(folder).expanduser().resolve()
    if not any(any(folder.glob(f"*{s}")) for s in (".safetensors", ".bin", ".pth")):
        raise TeacherError(f"{folder} has open_clip_config.json but no weights",
                           "put open_clip_model.safetensors (or open_clip_pytorch_model.bin) in it; " + WEIGHTS_HINT)
    name = f"local-dir:{folder}"
    try:
        net = open_clip.create_model(name, device="cpu", pretrained_hf=False)
        tokenizer = open_clip.get_tokenizer(name)
    except Exception as e:  # noqa: BLE001
        raise TeacherError(f"could not load the open_clip model in {folder}: {first_line(e)}",
                           "check that the weights belong to the architecture in open_clip_config.json") from e
    config = {"source": "open_clip_dir", "folder": folder.name}
    return OpenCLIPTeacher(net.eval(), tokenizer, data_spec, config, **opts)


# -- Hugging Face ---------------------------------------------------------------------------------

def _hf_preprocess(folder: Path, vision_config) -> tuple[int, tuple, tuple]:
    """(image size, mean, std) from preprocessor_config.json, else the vision config + CLIP stats."""
    return preprocessor_stats(folder, vision_config.image_size, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)


def _hf_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:  # noqa: BLE001
        raise TeacherError(f"no usable tokenizer in {folder}: {first_line(e)}",
                           "save the model's tokenizer into the same folder (tokenizer.save_pretrained)") from e


def _text_max_len(model) -> int:
    return int(model.config.text_config.max_position_embeddings)


class HFCLIPTeacher(FramewiseVLTeacher):
    """A Hugging Face `CLIPModel` applied frame-wise."""

    def __init__(self, model, tokenizer, data_spec: DataSpec, config: dict[str, Any], *, image_size: int,
                 mean: Sequence[float], std: Sequence[float], **opts):
        super().__init__(data_spec, embed_dim=int(model.config.projection_dim), image_size=image_size,
                         mean=mean, std=std, config=config, **opts)
        self.model = model
        self.tokenizer = tokenizer
        self.logit_scale = float(model.logit_scale.exp().item())
        self.freeze()

    def _encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return _pooled(self.model.get_image_features(pixel_values=pixels))

    def _encode_text_raw(self, texts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(texts, padding=True, truncation=True, max_length=_text_max_len(self.model),
                             return_tensors="pt").to(self._device())
        return _pooled(self.model.get_text_features(input_ids=tok["input_ids"],
                                                    attention_mask=tok.get("attention_mask")))


def _pooled(out) -> torch.Tensor:
    """transformers < 5 returns the projected features; 5 returns an output whose pooler holds them."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class HFXCLIPTeacher(VisionLanguageTeacher):
    """A Hugging Face `XCLIPModel`: frames -> ViT -> cross-frame integration transformer (MIT).

    embed_temporal = the MIT's per-frame outputs (B, T, D); embed = their mean (the model's own video
    embedding), unit-norm. Zero-shot follows X-CLIP: each class prompt embedding is shifted by the
    video-specific prompt generator before the cosine similarity.
    """

    def __init__(self, model, tokenizer, data_spec: DataSpec, config: dict[str, Any], *, image_size: int,
                 mean: Sequence[float], std: Sequence[float], frame_batch: int = 256):
        super().__init__()
        self.model, self.tokenizer, self.data_spec = model, tokenizer, data_spec
        self.embed_dim = int(model.config.projection_dim)
        self.num_frames = int(model.config.vision_config.num_frames)  # the MIT's position table is this long
        self.image_size, self.mean, self.std = image_size, tuple(mean), tuple(std)
        self.frame_batch = frame_batch
        self.logit_scale = float(model.logit_scale.exp().item())
        self.config = {**config, "num_frames": self.num_frames, "image_size": image_size,
                       "mean": list(self.mean), "std": list(self.std)}
        self.freeze()

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _frame_features(self, x: torch.Tensor):
        """-> per-frame MIT outputs (B, T, D) and the patch tokens the prompt generator reads (B, P, D)."""
        m = self.model
        frames = model_frames(x, self.data_spec, self.image_size, self.mean, self.std, self.num_frames)
        B, T = frames.shape[:2]
        flat = frames.reshape(B * T, *frames.shape[2:])
        outs = [m.vision_model(pixel_values=c) for c in flat.split(self.frame_batch)]
        cls = m.visual_projection(torch.cat([o.pooler_output for o in outs]))            # (B*T, D)
        mit = m.mit(cls.view(B, T, -1)).last_hidden_state                                 # (B, T, D)
        patches = torch.cat([o.last_hidden_state[:, 1:, :] for o in outs])               # (B*T, P, W)
        patches = m.prompts_visual_layernorm(patches) @ m.prompts_visual_projection      # (B*T, P, D)
        return mit, patches.view(B, T, -1, mit.shape[-1]).mean(1)                          # (B, P, D)

    def _embed_temporal(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self._frame_features(x)[0], dim=-1)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self._frame_features(x)[0].mean(1), dim=-1)

    def _text_raw(self, texts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(texts, padding=True, truncation=True, max_length=_text_max_len(self.model),
                             return_tensors="pt").to(self._device())
        return _pooled(self.model.get_text_features(input_ids=tok["input_ids"],
                                                    attention_mask=tok.get("attention_mask")))

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self._text_raw(list(texts)).float(), dim=-1)

    @torch.no_grad()
    def class_text_embeddings(self, class_names: Sequence[str],
                              templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
        """(C, D) class prompt embeddings, un-normalized: X-CLIP's prompt generator adds to the raw ones."""
        prompts = render_prompts(class_names, templates)
        flat = [p for per_class in prompts for p in per_class]
        return self._text_raw(flat).float().reshape(len(class_names), len(prompts[0]), -1).mean(1)

    def zeroshot_logits(self, x: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()), self._context(x):
            mit, patches = self._frame_features(x)
            video = F.normalize(mit.mean(1).float(), dim=-1)                              # (B, D)
            text = class_emb.to(video).unsqueeze(0).expand(video.shape[0], -1, -1)       # (B, C, D)
            text = text + self.model.prompts_generator(text, patches.to(text))
            text = F.normalize(text.float(), dim=-1)
            return self.logit_scale * torch.einsum("bd,bcd->bc", video, text)


def hf_model_type(folder: str | Path) -> str | None:
    """model_type from a Hugging Face config.json, or None when the folder has none."""
    cfg = Path(folder) / "config.json"
    if not cfg.is_file():
        return None
    return str(read_json(cfg, TeacherError, "fix or replace config.json").get("model_type"))


def load_hf_dir(folder: str | Path, data_spec: DataSpec, **opts):
    """A local Hugging Face folder (detected from config.json's model_type): CLIPModel, XCLIPModel, or a
    video model of edgekd.teachers.hf_video.FAMILIES."""
    folder = Path(folder).expanduser().resolve()
    model_type = hf_model_type(folder)
    if model_type is None:
        raise TeacherError(f"{folder} has no config.json", "pass a folder written by save_pretrained")
    from edgekd.teachers.hf_video import FAMILIES

    if model_type not in HF_MODEL_TYPES and model_type not in FAMILIES:
        raise TeacherError(f"{folder}: Hugging Face model_type {model_type!r} is not a supported teacher",
                           "supported: " + ", ".join([*(f"{k} ({v})" for k, v in HF_MODEL_TYPES.items()),
                                                      *(f"{k} ({f.encoder}, {f.classifier})" for k, f in FAMILIES.items())]))
    if not any((folder / f).is_file() for f in HF_WEIGHT_FILES):
        raise TeacherError(f"{folder} has config.json but no weights ({' or '.join(HF_WEIGHT_FILES[::2])})",
                           "put the model's weight files in that folder; " + WEIGHTS_HINT)
    prepare_offline()
    try:
        import transformers  # noqa: F401
    except ImportError as e:
        raise TeacherError("Hugging Face teachers need the transformers package",
                           "pip install transformers (or edgekd[vl])") from e
    if model_type in FAMILIES:
        from edgekd.teachers.hf_video import load_hf_video

        return load_hf_video(folder, model_type, data_spec, **opts)
    model = hf_model(folder, HF_MODEL_TYPES[model_type])
    tokenizer = _hf_tokenizer(folder)
    image_size, mean, std = _hf_preprocess(folder, model.config.vision_config)
    config = {"source": f"hf_{model_type}", "folder": folder.name}
    if model_type == "xclip":
        opts.pop("pooling", None)
        opts.pop("num_frames", None)
        return HFXCLIPTeacher(model, tokenizer, data_spec, config, image_size=image_size, mean=mean, std=std, **opts)
    return HFCLIPTeacher(model, tokenizer, data_spec, config, image_size=image_size, mean=mean, std=std, **opts)
