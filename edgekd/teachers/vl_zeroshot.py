"""Zero-shot classification with a vision-language teacher (the paper's "Teacher-ZSAC" row).

Each test video's embedding is compared by cosine similarity with the prompt-ensembled text
embedding of every class name; the most similar class is the prediction (Çelik et al. 2023,
Sec. 4.2, Table 1). No label and no training is involved.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from edgekd.data.spec import DataSpec
from edgekd.errors import DataError, TeacherError
from edgekd.teachers.text import DEFAULT_TEMPLATES
from edgekd.teachers.vl_progress import progress_bar


@torch.no_grad()
def predict(teacher, manifest, data_spec: DataSpec, scorer, *, batch_size: int = 16, num_workers: int = 2,
            quiet: bool = False, description: str = "evaluate") -> tuple[torch.Tensor, torch.Tensor]:
    """Run `scorer(x) -> (B, C)` over one centre clip per labeled video: (scores (N, C), labels (N,))."""
    from edgekd.data.dataset import ClipDataset, make_loader

    labeled = manifest.subset([e for e in manifest.entries if e.label is not None])
    if len(labeled) == 0:
        raise DataError("no labeled videos to evaluate on", "evaluate on a split whose videos carry labels")
    loader = make_loader(ClipDataset(labeled, data_spec, mode="eval"), batch_size, shuffle=False,
                         num_workers=num_workers)
    device = next(iter(teacher.parameters()), torch.zeros(0)).device
    scores, labels = [], []
    with progress_bar(description, len(labeled), unit="videos", quiet=quiet) as advance:
        for batch in loader:
            scores.append(scorer(batch["video"].to(device)).float().cpu())
            labels.append(batch["label"])
            advance(len(batch["label"]))
    return torch.cat(scores), torch.cat(labels)


def accuracy_report(scores: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> dict[str, Any]:
    """top-1/top-5 accuracy, chance level and per-class top-1 from (N, C) scores (edgekd.runtime.metrics)."""
    from edgekd.runtime.metrics import classification

    m = classification(scores.numpy(), labels.numpy(), list(class_names))
    per_class = {name: round(c["accuracy"], 4) for name, c in m["per_class"].items() if c["videos"]}
    return {"top1": round(m["top1"], 4), "top5": round(m["top5"], 4), "chance": round(1.0 / len(class_names), 4),
            "videos": m["n"], "per_class": per_class}


def zeroshot_eval(teacher, manifest, data_spec: DataSpec, templates: Sequence[str] = DEFAULT_TEMPLATES, *,
                  batch_size: int = 16, num_workers: int = 2, quiet: bool = False) -> dict[str, Any]:
    """Zero-shot top-1/top-5 of a VL teacher on `manifest`'s labeled videos, from class-name prompts."""
    if not hasattr(teacher, "zeroshot_logits"):
        raise TeacherError(f"teacher {getattr(teacher, 'source', type(teacher).__name__)} has no text tower; "
                           "zero-shot needs a vision-language teacher",
                           "use a CLIP-style teacher or embedded:vl, or fine-tune this one and evaluate it")
    class_emb = teacher.class_text_embeddings(manifest.class_names, templates)       # (C, D)
    scores, labels = predict(teacher, manifest, data_spec, lambda x: teacher.zeroshot_logits(x, class_emb),
                             batch_size=batch_size, num_workers=num_workers, quiet=quiet, description="zero-shot")
    return {**accuracy_report(scores, labels, manifest.class_names), "templates": list(templates)}
