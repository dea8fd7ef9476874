"""Tiny real CLIP-style models written to disk in the formats users bring (helpers for test_vl*/test_*teacher*).

open_clip: a model-config JSON + a state_dict .pt, or the hub folder layout (open_clip_config.json +
open_clip_model.safetensors). Hugging Face: CLIPModel / XCLIPModel `save_pretrained` folders with a
CLIP BPE tokenizer whose vocabulary is built here (letters, word-final letters, the two specials).
"""

from __future__ import annotations

import json
from pathlib import Path

OPEN_CLIP_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
OPEN_CLIP_MEAN = (0.5, 0.5, 0.5)   # not CLIP's: the teacher must read it from the model
OPEN_CLIP_STD = (0.25, 0.25, 0.25)


def _hf_ready():
    from edgekd.teachers.text import prepare_offline

    prepare_offline()  # transformers imports torchvision: needs the CPU shim first


def open_clip_checkpoint(folder: Path, seed: int = 0, cfg: dict | None = None) -> tuple[Path, Path]:
    """(config .json, weights .pt) of a freshly initialised tiny open_clip CLIP."""
    import torch

    _hf_ready()  # open_clip imports timm -> torchvision
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    cfg = cfg or OPEN_CLIP_CFG
    folder.mkdir(parents=True, exist_ok=True)
    cfg_path = folder / "edgekd-tiny-clip.json"
    cfg_path.write_text(json.dumps(cfg))
    weights = folder / "tiny_clip.pt"
    torch.save(CLIP(**cfg).state_dict(), weights)
    return cfg_path, weights


def open_clip_dir(folder: Path, weights: Path) -> Path:
    """The hub layout: open_clip_config.json (model + preprocess config) and safetensors weights."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": OPEN_CLIP_CFG, "preprocess_cfg": {"mean": list(OPEN_CLIP_MEAN), "std": list(OPEN_CLIP_STD)}}))
    state = torch.load(weights, weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "open_clip_model.safetensors"))
    return folder


def clip_tokenizer():
    _hf_ready()
    from transformers import CLIPTokenizer

    letters = list("abcdefghijklmnopqrstuvwxyz.,'")
    vocab = {c: i for i, c in enumerate(letters)}
    vocab.update({c + "</w>": len(letters) + i for i, c in enumerate(letters)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def _text_cfg(tok) -> dict:
    return dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=40, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def _vision_cfg(**extra) -> dict:
    return dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                image_size=32, patch_size=8, **extra)


def hf_clip_dir(folder: Path, seed: int = 0) -> Path:
    """A CLIPModel folder (config.json, model.safetensors, tokenizer files, preprocessor_config.json)."""
    import torch

    _hf_ready()
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    tok = clip_tokenizer()
    model = CLIPModel(CLIPConfig(text_config=_text_cfg(tok), vision_config=_vision_cfg(), projection_dim=24))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({"crop_size": {"height": 32, "width": 32},
                                                                 "image_mean": list(OPEN_CLIP_MEAN),
                                                                 "image_std": list(OPEN_CLIP_STD)}))
    return folder


def hf_xclip_dir(folder: Path, seed: int = 0, num_frames: int = 4) -> Path:
    import torch

    _hf_ready()
    from transformers import XCLIPConfig, XCLIPModel

    torch.manual_seed(seed)
    tok = clip_tokenizer()
    vision = _vision_cfg(num_frames=num_frames, mit_hidden_size=24, mit_intermediate_size=48,
                         mit_num_hidden_layers=1, mit_num_attention_heads=2)
    model = XCLIPModel(XCLIPConfig(text_config=_text_cfg(tok), vision_config=vision, projection_dim=24,
                                   prompt_layers=1, prompt_num_attention_heads=2))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
