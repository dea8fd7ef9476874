"""Test-split accuracy of a student: per epoch during training (one centre clip per video) and
`edgekd eval RUN` with the multi-view protocol (K uniformly spaced clips x 3 spatial crops, softmax
averaged per video; TimeBalance Sec. 4.2), top-1/top-5, per-class accuracy and a confusion matrix.

`predict` only runs the model; every figure comes from edgekd.runtime.metrics (video_scores +
classification), the function export and bench use too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from edgekd.report import Reporter


@torch.no_grad()
def predict(model: torch.nn.Module, loader, device: torch.device, amp: bool = False,
            channels_last: bool = False, progress=None):
    """Logits (N, V, C) per video and view (V = 1 for single-clip loaders) and labels (N,), as numpy."""
    import numpy as np

    was_training = model.training
    model.eval()
    logits, labels = [], []
    for batch in loader:
        v = batch["video"].to(device, non_blocking=True)
        views = v.dim() == 6                                   # (B, n, 3, T, H, W): multi-view
        x = v.flatten(0, 1) if views else v                   # (B*n, 3, T, H, W)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            z = model(x).float()                               # (B*n, C)
        logits.append(z.view(v.shape[0], v.shape[1] if views else 1, -1).cpu().numpy())
        labels.append(batch["label"].numpy())
        if progress is not None:
            progress(len(batch["label"]))
    model.train(was_training)
    if not logits:
        return np.zeros((0, 1, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(logits), np.concatenate(labels)


def accuracy_metrics(logits, labels, class_names: list[str]) -> dict[str, Any]:
    """top-1, top-5 (k = min(5, C)), per-class accuracy and the confusion matrix of (N, V, C) view logits."""
    from edgekd.runtime.metrics import classification, video_scores

    m = classification(video_scores(logits), labels, class_names)
    return {"top1": m["top1"] or 0.0, "top5": m["top5"] or 0.0, "num_videos": m["n"],
            "per_class": m["per_class"], "confusion": m["confusion"]}


def plot_confusion(confusion: list[list[int]], class_names: list[str], path: str | Path, title: str = "") -> Path:
    """Row-normalized confusion matrix as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cm = np.asarray(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    C = len(class_names)
    side = min(4 + 0.35 * C, 30)
    fig, ax = plt.subplots(figsize=(side, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if C <= 60:
        ax.set_xticks(range(C), class_names, rotation=90, fontsize=8)
        ax.set_yticks(range(C), class_names, fontsize=8)
        if C <= 20:
            for i in range(C):
                for j in range(C):
                    if cm[i, j]:
                        ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (rows normalized)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def evaluate_run(run_dir: str | Path, *, data: str | None = None, video_root: str | None = None, clips: int | None = None,
                 crops: int | None = None, batch_size: int | None = None, workers: int | None = None,
                 device: str = "auto", checkpoint: str = "checkpoint.pt", write: bool = True,
                 reporter: Reporter | None = None) -> dict[str, Any]:
    """Multi-view evaluation of a run's student on its dataset's test split.

    Writes eval.json and confusion.png into the run folder (write=True) and returns the results.
    `data` overrides the dataset path stored in the run's config (same classes required); `video_root`
    the run's data.video_root.
    """
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint
    from edgekd.data.manifest import load_dataset
    from edgekd.distill.config import DistillConfig
    from edgekd.distill.data import eval_loader
    from edgekd.distill.dist import resolve_device
    from edgekd.errors import DataError
    from edgekd.io import write_json

    run_dir = Path(run_dir)
    ckpt_path = run_dir / checkpoint if run_dir.is_dir() else run_dir
    ckpt = load_checkpoint(ckpt_path)
    model, spec = build_student_from_checkpoint(ckpt)
    cfg = DistillConfig.from_dict(ckpt.get("config") or {})
    data_path = data if data is not None else cfg.data.path
    manifest = load_dataset(data_path, video_root=video_root or cfg.data.video_root, reporter=reporter)
    if list(manifest.class_names) != list(spec.class_names):
        raise DataError(f"{data_path or 'synthetic dataset'}: its {len(manifest.class_names)} classes differ from "
                        f"the {len(spec.class_names)} the student was trained on",
                        "evaluate on the dataset the run was trained on")
    test = manifest.split("test")
    views = (clips or cfg.data.eval_clips, crops or cfg.data.eval_crops)
    dev = resolve_device(device)
    model.to(dev)
    loader = eval_loader(cfg, test, spec, mode="multiview", views=views, batch_size=batch_size or
                         max(1, cfg.train.eval_batch_size // (views[0] * views[1])), workers=workers)
    t0 = time.perf_counter()
    with (reporter or Reporter.quiet()).bar("eval", len(test.entries), unit="videos") as bar:
        logits, labels = predict(model, loader, dev, progress=bar.advance)
    results = accuracy_metrics(logits, labels, list(spec.class_names))
    results.update({"run": str(run_dir), "checkpoint": str(ckpt_path), "protocol": {
        "clips": views[0], "crops": views[1], "frames": spec.frames, "size": spec.size,
        "frame_stride": spec.frame_stride}, "seconds": round(time.perf_counter() - t0, 2),
        "student": ckpt["student"]["name"], "recipe": cfg.recipe.name})
    if write and run_dir.is_dir():
        write_json(run_dir / "eval.json", results)
        plot_confusion(results["confusion"], list(spec.class_names), run_dir / "confusion.png",
                       f"{run_dir.name}: top-1 {100 * results['top1']:.1f}% ({views[0]}x{views[1]} views)")
        results["files"] = [str(run_dir / "eval.json"), str(run_dir / "confusion.png")]
    return results
