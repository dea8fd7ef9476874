"""Teachers: one interface (base.Teacher), vision-language and self-supervised teachers, a loader.

    from edgekd.teachers import Teacher, load_teacher

    base                the Teacher interface
    loading             load_teacher(spec, data_spec): every way of naming a teacher, one entry point
    checkpoint_teacher  edgekd student checkpoints and torchvision video models as teachers
    ssl_teacher         TimeBalance's two self-supervised teachers: the networks and their folder
    losses              TimeBalance's contrastive losses for the self-supervised teachers
    timebalance         TimeBalance's reweighting of its two teachers (Eqs. 5-7), used by distill
    pcl                 the PCL network and objective (Tao et al.; Camarena et al.)
    embedded_vl         the embedded vision-language teacher: a small 3D CNN aligned to a sentence encoder
    vl_base             what every vision-language teacher shares: text tower, zero-shot scoring
    vl                  open_clip, Hugging Face CLIP and X-CLIP teachers from local files
    vl_loss             the video-text alignment losses of the embedded VL teacher
    vl_zeroshot         zero-shot classification with a VL teacher
    vl_progress         progress lines for teacher training and evaluation
    text                frozen text encoders and class-name prompts
    hf_video            Hugging Face video models: VideoMAE, TimeSformer, ViViT, V-JEPA 2
    hf_folder           strict loading of a local open_clip / Hugging Face model folder
    hf_cache            Hugging Face model ids resolved in the local hub cache
    finetuned           a fine-tuned teacher folder: its base teacher plus the trained head
    cache               the teacher output cache distillation reads

The loops that train teachers live in edgekd.pretrain.
Names load on first use so importing this package stays light (no torch until a teacher is needed).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Teacher": "edgekd.teachers.base",
    "load_teacher": "edgekd.teachers.loading",
    "check_teacher": "edgekd.teachers.loading",
    "VisionLanguageTeacher": "edgekd.teachers.vl_base",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'edgekd.teachers' has no attribute {name!r}")
