"""Camarena et al.'s claim, measured: a self-supervised student converges in fewer epochs, to at
least the same accuracy, when a frozen self-supervised teacher guides it by KD, whatever the pair.

    python benchmarks/camarena.py --out runs/camarena            # table + camarena.json + camarena.png
    python benchmarks/camarena.py --pairs tiny3d:tiny3d,r3d_18:tiny3d --epochs 12

The paper's design (Sec. 3): every architecture is first trained with PCL alone (edgekd teacher
pretrain --objective pcl); that run is both the teacher and the no-KD curve. Then a student is
trained with PCL + KD from a teacher of the same architecture and from teachers of other ones.
Downstream top-1 after each pretraining epoch is a linear probe on the frozen backbone (labeled
train videos -> test videos); epoch 0 is the random init. "epochs to target" = the first epoch
whose top-1 reaches the no-KD run's final top-1. Finished runs are reused, so an interrupted
benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# Student options for CPU-sized runs (the registry's widths; a full-width ResNet-18 is ~50x slower).
ARCH_OPTIONS = {"tiny3d": {"width": 0.5}, "r3d_18": {"width": 0.125, "depth": 1},
                "r2plus1d_18": {"width": 0.125, "depth": 1}, "mc3_18": {"width": 0.125, "depth": 1}}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/camarena", help="folder for the runs, camarena.json and camarena.png")
    p.add_argument("--data", default=None, help="dataset (default: the embedded synthetic set)")
    p.add_argument("--pairs", default="tiny3d:tiny3d,tiny3d:r2plus1d_18,r2plus1d_18:tiny3d",
                   help="TEACHER:STUDENT pairs")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--kd-weight", type=float, default=1.0)
    p.add_argument("--contrast-weight", type=float, default=1.0, help="w_c of the PCL contrastive term")
    p.add_argument("--size", type=int, default=32, help="clip size in px (the synthetic set stores 64)")
    p.add_argument("--pretrain-per-class", type=int, default=12, help="unlabeled videos per class to pretrain on")
    p.add_argument("--probe-per-class", type=int, default=10, help="labeled videos per class for the probe")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=3, help="runs of a phase trained side by side (processes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    return p.parse_args(argv)


def select(manifest, pretrain_per_class: int, probe_per_class: int):
    """A sub-manifest: per class, the first probe + pretrain train videos, plus every test video.
    Returns (manifest, split) with the probe videos labeled and the pretraining ones unlabeled."""
    from edgekd.data.splits import make_split

    taken: dict[int, int] = {}
    keep = []
    for e in manifest.entries:
        if e.split == "test":
            keep.append(e)
        elif taken.get(e.label, 0) < pretrain_per_class + probe_per_class:
            taken[e.label] = taken.get(e.label, 0) + 1
            keep.append(e)
    small = manifest.subset(keep)
    return small, make_split(small, labeled_per_class=probe_per_class, seed=0)


SMOOTH = 3  # epochs in the trailing mean: one test video moves a probe by 1.4 points on the synthetic set


def epochs_to(curve: list[float], target: float) -> int | None:
    """First epoch (>= 1) whose top-1 reaches `target`, None if none does."""
    return next((e for e, v in enumerate(curve) if e >= 1 and v >= target - 1e-9), None)


def trailing_mean(curve: list[float], k: int = SMOOTH) -> list[float]:
    """Epoch e -> mean top-1 of epochs max(1, e-k+1)..e (epoch 0, the random init, stays as is)."""
    return [curve[0]] + [sum(curve[max(1, e - k + 1):e + 1]) / len(curve[max(1, e - k + 1):e + 1])
                         for e in range(1, len(curve))]


def prepare(args):
    """(manifest, split, spec, probe_train, probe_test): the same in every process (seeded split)."""
    from edgekd.data.manifest import default_data_spec, load_dataset
    from edgekd.distill.probe import ClipSet

    manifest, split = select(load_dataset(args.data), args.pretrain_per_class, args.probe_per_class)
    spec = default_data_spec(manifest, size=args.size)
    labeled, _ = split.apply(manifest, hide_labels=False)
    return manifest, split, spec, ClipSet.decode(labeled.split("train"), spec), ClipSet.decode(manifest.split("test"), spec)


_DATA = None


def run(args, name: str, student: str, teacher: str | None, seed: int) -> str:
    """One pretraining run with the probe after every epoch (skipped when its folder is complete)."""
    global _DATA
    import torch

    from edgekd.pretrain.pcl import PretrainConfig, pretrain_pcl
    from edgekd.distill.probe import linear_probe

    folder = Path(args.out) / name
    if (folder / "teacher.json").is_file():
        return name
    torch.set_num_threads(max(1, args.threads))
    _DATA = _DATA or prepare(args)
    manifest, split, spec, probe_train, probe_test = _DATA

    def probe(epoch, net):
        top1 = linear_probe(net.backbone, probe_train, probe_test)
        print(f"  {name} epoch {epoch}: probe top-1 {100 * top1:.1f} %", flush=True)
        return {"top1": top1}

    print(f"{name}: {student} {ARCH_OPTIONS.get(student, {})}" + (f" <- KD from {teacher}" if teacher else ""),
          flush=True)
    cfg = PretrainConfig(student=student, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         kd_weight=args.kd_weight, contrast_weight=args.contrast_weight,
                         temperature=args.temperature, seed=seed,
                         **ARCH_OPTIONS.get(student, {}))
    pretrain_pcl(manifest, split, spec, folder, cfg, teacher=None if teacher is None else Path(args.out) / teacher,
                 device=args.device, progress=False, on_epoch=probe)
    return name


def run_all(args, jobs: list[tuple]) -> None:
    """Runs of one phase, `args.jobs` processes at a time (each single-threaded by default)."""
    if args.jobs <= 1:
        for job in jobs:
            run(args, *job)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
        for done in [pool.submit(run, args, *job) for job in jobs]:
            done.result()


def main(argv=None) -> int:
    args = parse_args(argv)
    from edgekd.teachers.loading import read_teacher_meta

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    start = time.perf_counter()
    archs = list(dict.fromkeys(a for pair in pairs for a in pair))
    # phase 1: every architecture's PCL run (its teacher and its no-KD curve); phase 2: the KD students
    run_all(args, [(f"pcl-{a}", a, None, 0) for a in archs])
    run_all(args, [(f"kd-{t}-to-{s}", s, f"pcl-{t}", 1) for t, s in pairs])

    def metrics(name):
        return read_teacher_meta(out / name)[1]["metrics"]

    results = {"args": vars(args), "pairs": []}
    for teacher, student in pairs:
        kd, base = metrics(f"kd-{teacher}-to-{student}"), metrics(f"pcl-{student}")
        kd_curve, base_curve = ([p["top1"] for p in m["probe_per_epoch"]] for m in (kd, base))
        target, smooth_target = base_curve[-1], trailing_mean(base_curve)[-1]
        results["pairs"].append({"teacher": teacher, "student": student, "kd_curve": kd_curve,
                                 "no_kd_curve": base_curve, "target": target,
                                 "epochs_no_kd": epochs_to(base_curve, target), "epochs_kd": epochs_to(kd_curve, target),
                                 "smooth_target": smooth_target,
                                 "smooth_epochs_no_kd": epochs_to(trailing_mean(base_curve), smooth_target),
                                 "smooth_epochs_kd": epochs_to(trailing_mean(kd_curve), smooth_target),
                                 "kd_seconds": kd["pretrain_seconds"], "no_kd_seconds": base["pretrain_seconds"],
                                 "kd_loss": kd["loss_per_epoch"], "no_kd_loss": base["loss_per_epoch"]})
    results["seconds"] = round(time.perf_counter() - start, 1)
    (out / "camarena.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    plot(results, out / "camarena.png")
    print(f"wrote {out / 'camarena.json'} and {out / 'camarena.png'}")
    return 0


def table(results) -> str:
    """Markdown: top-1 % per epoch, with and without KD, and the epochs each needs to reach the no-KD
    final top-1, as the last epoch's value and as the mean of the last SMOOTH epochs."""
    rows = results["pairs"]
    epochs = len(rows[0]["kd_curve"])
    never = lambda e: "never" if e is None else str(e)  # noqa: E731
    head = ("| teacher -> student | KD | " + " | ".join(str(e) for e in range(epochs)) +
            f" | mean last {SMOOTH} | epochs to no-KD final | epochs to no-KD mean last {SMOOTH} |")
    lines = [head, "|---|---|" + "---:|" * (epochs + 3)]
    for r in rows:
        pair = f"{r['teacher']} -> {r['student']}"
        for label, curve, key in (("no", r["no_kd_curve"], "no_kd"), ("yes", r["kd_curve"], "kd")):
            cells = " | ".join(f"{100 * v:.1f}" for v in curve)
            lines.append(f"| {pair} | {label} | {cells} | {100 * trailing_mean(curve)[-1]:.1f} | "
                         f"{never(r['epochs_' + key])} | {never(r['smooth_epochs_' + key])} |")
    return "\n".join(lines)


def plot(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["pairs"]
    fig, axes = plt.subplots(1, len(rows), figsize=(4.5 * len(rows), 3.6), sharey=True, squeeze=False)
    for ax, r in zip(axes[0], rows):
        x = range(len(r["kd_curve"]))
        for key, marker, label in (("no_kd_curve", "o", "PCL (no KD)"), ("kd_curve", "s", f"PCL + KD from {r['teacher']}")):
            line, = ax.plot(x, [100 * v for v in r[key]], marker, alpha=0.35)
            ax.plot(x, [100 * v for v in trailing_mean(r[key])], "-", color=line.get_color(),
                    label=f"{label}, mean of {SMOOTH} epochs")
        ax.axhline(100 * r["smooth_target"], color="grey", lw=0.8, ls="--")
        ax.set_title(f"{r['teacher']} -> {r['student']}")
        ax.set_xlabel("pretraining epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("linear-probe top-1 (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
