"""Distillation-epoch time with a live teacher vs the teacher output cache, same data, as a ratio.

One epoch = the training videos of the dataset, one clip each (the centre clip, which is also the
clip the cache holds with clips_per_video=1). Per step a student (tiny3d) embeds the clips and a
linear projector regresses the teacher's embedding (feature MSE, the VL feature-distillation
stage); the target comes either from running the teacher (`live`) or from `TeacherCache.embed`
(`cache`).

The two arms train two identical students on the SAME batches, step by step, in alternating order.
The batches are decoded once up front (timed: the loading cost every epoch pays, either way) and
held in memory; then each round steps both arms through all of them, one live step and one cache
step per batch taken moments apart, so interference on a shared, busy machine hits both alike.
An arm's epoch time = loading time + the student's work (forward, backward, update: the same in both
arms, so its mean over both arms is used) + getting the targets (the teacher's forward, or the
cache lookups), all measured in this run; the raw per-arm sums are printed as well.

    python benchmarks/teacher_cache.py                       # synthetic dataset, a tiny3d x2 teacher
    python benchmarks/teacher_cache.py --teacher runs/big    # any teacher spec load_teacher reads
    python benchmarks/teacher_cache.py --rounds 3 --teacher-width 4 --threads 2
    python benchmarks/teacher_cache.py --hf videomae        # a transformer teacher (random ViT-S/16-like
                                                             # VideoMAE: 4 layers, 8 frames at 112 px)

The default teacher is a freshly initialised tiny3d of twice the student's width (--teacher-width):
its cost per clip, which is all this benchmark measures, does not depend on the values of its
weights. Pass --teacher to time a trained one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


HF_SMALL = dict(hidden_size=192, intermediate_size=768, num_hidden_layers=4, num_attention_heads=3, patch_size=16)
HF_SIZES = {"videomae": dict(image_size=112, num_frames=8), "timesformer": dict(image_size=112, num_frames=8),
            "vivit": dict(image_size=112, num_frames=8, tubelet_size=[2, 16, 16]),
            "vjepa2": dict(crop_size=112, frames_per_clip=8)}


def build_hf_teacher(family: str, spec, folder: Path):
    """A random transformers video encoder of `family` (HF_SMALL), through load_teacher like a user's."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "teachers"))
    from hf_video_tiny import hf_video_dir

    from edgekd.teachers.loading import load_teacher

    return load_teacher(hf_video_dir(folder, family, **HF_SMALL, **HF_SIZES[family]), spec).freeze()


def build_default_teacher(spec, width: float):
    from edgekd.teachers.ssl_teacher import build_ssl_teacher

    return build_ssl_teacher("invariant", spec, "tiny3d", {"width": width}).freeze()


class Arm:
    """One student + projector + optimizer, and the clock of its steps."""

    def __init__(self, spec, embed_dim: int, target_fn):
        import torch

        from edgekd.students import build_student

        torch.manual_seed(0)                                   # both arms start from the same weights
        self.student = build_student("tiny3d", num_classes=spec.num_classes, frames=spec.frames, size=spec.size)
        self.proj = torch.nn.Linear(self.student.feature_dim, embed_dim)
        self.opt = torch.optim.Adam(list(self.student.parameters()) + list(self.proj.parameters()), lr=1e-3)
        self.target_fn = target_fn
        self.seconds = self.target_seconds = 0.0

    def step(self, x, ids, starts) -> None:
        import torch
        import torch.nn.functional as F

        t0 = time.perf_counter()
        with torch.no_grad():
            target = self.target_fn(x, ids, starts)             # (B, D)
        t1 = time.perf_counter()
        loss = F.mse_loss(self.proj(self.student.forward_features(x)), target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.seconds += time.perf_counter() - t0
        self.target_seconds += t1 - t0


def paired_epoch(batches, arms: dict[str, Arm]) -> None:
    """Every in-memory batch stepped by every arm, the order alternating from batch to batch."""
    for b, (x, ids, starts) in enumerate(batches):
        for arm in (list(arms.values()) if b % 2 == 0 else list(arms.values())[::-1]):
            arm.step(x, ids, starts)


def load_batches(loader, manifest) -> tuple[list, float]:
    """All batches of one epoch as (clips, video ids, starts), and the seconds the loading took."""
    t0 = time.perf_counter()
    batches = [(b["video"], [manifest.entries[i].video_id for i in b["index"].tolist()], b["starts"][:, 0])
               for b in loader]
    return batches, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="dataset path (default: the embedded synthetic dataset)")
    ap.add_argument("--teacher", default=None, help="teacher spec for load_teacher (default: a fresh tiny3d)")
    ap.add_argument("--hf", default=None, choices=sorted(HF_SIZES), help="time a random transformers video "
                    "teacher of this family (HF_SMALL) instead")
    ap.add_argument("--teacher-width", type=float, default=2.0, help="width of the default tiny3d teacher")
    ap.add_argument("--rounds", type=int, default=2, help="timed epochs (after one warm-up pass)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--workers", type=int, default=2, help="data loader workers")
    args = ap.parse_args(argv)

    import torch
    from rich.console import Console
    from rich.table import Table

    from edgekd.data.dataset import ClipDataset, make_loader
    from edgekd.data.manifest import default_data_spec, load_dataset
    from edgekd.teachers.cache import build_cache

    torch.set_num_threads(args.threads)
    console = Console()
    manifest = load_dataset(args.data)
    spec = default_data_spec(manifest)
    train = manifest.split("train")
    hf_dir = tempfile.TemporaryDirectory(prefix="edgekd-hf-teacher-")
    if args.hf:
        teacher = build_hf_teacher(args.hf, spec, Path(hf_dir.name) / args.hf)
    elif args.teacher:
        from edgekd.pretrain.embedded import load_embedded
        from edgekd.teachers.loading import load_teacher

        build = lambda name: load_embedded(name, manifest, None, spec)  # noqa: E731  (embedded:NAME specs)
        teacher = load_teacher(args.teacher, spec, embedded=build).freeze()
    else:
        teacher = build_default_teacher(spec, args.teacher_width)
    label = (f"{teacher.config['class']} (random, {HF_SMALL['num_hidden_layers']} layers x "
             f"{HF_SMALL['hidden_size']}, {teacher.num_frames} x {teacher.image_size} px)" if args.hf else
             args.teacher or f"tiny3d x{args.teacher_width:g} (fresh)")
    name = "teacher"

    with tempfile.TemporaryDirectory(prefix="edgekd-cache-bench-") as tmp:
        t0 = time.perf_counter()
        cache = build_cache({name: teacher}, train, spec, Path(tmp) / "cache", clips_per_video=1,
                            batch_size=args.batch_size, num_workers=args.workers, progress=True)
        build_s = time.perf_counter() - t0

        loader = make_loader(ClipDataset(train, spec, mode="eval", clips_per_video=1), args.batch_size,
                             shuffle=False, num_workers=args.workers)
        batches, data_s = load_batches(loader, train)
        arms = {"live": Arm(spec, teacher.embed_dim, lambda x, ids, starts: teacher.embed(x)),
                "cache": Arm(spec, teacher.embed_dim, lambda x, ids, starts: cache.embed(name, ids, starts))}
        paired_epoch(batches[:3], arms)                        # warm-up: allocator, caches
        rows = []
        for r in range(args.rounds):
            before = {k: (a.seconds, a.target_seconds) for k, a in arms.items()}
            paired_epoch(batches, arms)
            step = {k: (a.seconds - before[k][0], a.target_seconds - before[k][1]) for k, a in arms.items()}
            rows.append((data_s, step))
            console.print(f"round {r + 1}: live steps {step['live'][0]:.2f} s (teacher {step['live'][1]:.2f} s), "
                          f"cache steps {step['cache'][0]:.2f} s (lookups {step['cache'][1]:.3f} s), "
                          f"epoch ratio {(data_s + step['live'][0]) / (data_s + step['cache'][0]):.2f}x")

    n = len(rows)
    load = data_s
    target_s = {k: sum(st[k][1] for _, st in rows) / n for k in arms}
    raw = {k: load + sum(st[k][0] for _, st in rows) / n for k in arms}
    student_s = sum(st[k][0] - st[k][1] for _, st in rows for k in arms) / (2 * n)
    epoch_s = {k: load + student_s + target_s[k] for k in arms}
    table = Table(title=f"distillation epoch, {len(train)} videos x 1 clip, batch {args.batch_size}, "
                        f"{args.threads} threads, teacher {label}, mean of {n} rounds")
    for col in ("arm", "epoch s", "loading s", "student s", "targets s", "raw arm sum s", "videos/s"):
        table.add_column(col, justify="right")
    for arm, title in (("live", "live teacher"), ("cache", "teacher cache")):
        table.add_row(title, f"{epoch_s[arm]:.2f}", f"{load:.2f}", f"{student_s:.2f}", f"{target_s[arm]:.3f}",
                      f"{raw[arm]:.2f}", f"{len(train) / epoch_s[arm]:.1f}")
    console.print(table)
    console.print(f"cache build (one-time, {len(train)} videos x 1 clip): {build_s:.1f} s")
    saved = epoch_s["live"] - epoch_s["cache"]
    console.print(f"[bold]speedup live/cache = {epoch_s['live'] / epoch_s['cache']:.2f}x[/bold] per epoch "
                  f"(raw arm sums: {raw['live'] / raw['cache']:.2f}x)"
                  + (f"; the cache pays for itself after {build_s / saved:.1f} epochs" if saved > 0 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
