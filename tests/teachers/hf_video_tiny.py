"""Tiny random Hugging Face video models written with save_pretrained (no download), one per family.

Each sees a clip unlike the runs' student clips (16 frames at 32 px in tiny_synth): its own frame
count and size from its config, and its own mean/std from preprocessor_config.json.
"""

from __future__ import annotations

import json
from pathlib import Path

MEAN = (0.4, 0.5, 0.6)   # not the student's: the teacher must read them from the folder
STD = (0.2, 0.25, 0.3)
LAYERS = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)

# family -> (config class, encoder class, classifier class, config kwargs); 4 frames at 24 px
CONFIGS = {
    "videomae": ("VideoMAEConfig", "VideoMAEModel", "VideoMAEForVideoClassification",
                 dict(image_size=24, patch_size=8, num_frames=4, tubelet_size=2, **LAYERS)),
    "timesformer": ("TimesformerConfig", "TimesformerModel", "TimesformerForVideoClassification",
                    dict(image_size=24, patch_size=8, num_frames=4, **LAYERS)),
    "vivit": ("VivitConfig", "VivitModel", "VivitForVideoClassification",
              dict(image_size=24, num_frames=4, tubelet_size=[2, 8, 8], **LAYERS)),
    "vjepa2": ("VJEPA2Config", "VJEPA2Model", "VJEPA2ForVideoClassification",
               dict(crop_size=24, patch_size=8, frames_per_clip=4, tubelet_size=2, num_pooler_layers=1,
                    pred_hidden_size=16, pred_num_attention_heads=2, pred_num_hidden_layers=1, **LAYERS)),
}


def hf_video_dir(folder: Path, family: str, labels: list[str] | None = None, seed: int = 0, **config) -> Path:
    """A save_pretrained folder: the bare encoder, or with `labels` the video classifier over them.
    `config` overrides the tiny config (benchmarks/teacher_cache.py times a bigger one)."""
    import torch
    import transformers

    from edgekd.teachers.text import prepare_offline

    prepare_offline()
    config_cls, encoder, classifier, kwargs = CONFIGS[family]
    kwargs = {**kwargs, **config}
    if labels:
        kwargs = {**kwargs, "id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}
    torch.manual_seed(seed)
    model = getattr(transformers, classifier if labels else encoder)(getattr(transformers, config_cls)(**kwargs))
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": list(MEAN), "image_std": list(STD)}))
    return folder
