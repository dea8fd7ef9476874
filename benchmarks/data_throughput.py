"""Clips/s delivered by the DataLoader vs the raw decode rate of the same files, per backend.

    python benchmarks/data_throughput.py [--dataset PATH] [--batch-size 16] [--workers 2] [--epochs 2]

Datasets: PATH (any layout edgekd reads), or by default the embedded synthetic set (64x64 H.264)
and a generated UCF101-format set (320x240 MPEG-4 AVI, 16 x 112 px clips, with an empty, a truncated
and a non-video file listed in its split; edgekd.data.fixtures). Broken videos are found once by an
untimed first decode pass, reported in one line and skipped by both the raw decode and the loader.

For each dataset and decode backend:
- raw decode: one process, one thread, `read_frames` of one clip per training video (same frame
  count, stride and decode size as the loader), no transforms;
- loader: `ClipDataset(mode="train")` (random clip + augmentation + normalize) through `make_loader`
  with N persistent workers, after one warm-up epoch;
- ratio = loader clips/s / raw decode clips/s (above 1: the workers add parallelism faster than the
  transforms cost), and how many CPU cores the workers kept busy (from /proc, Linux only);
- CPU ms per clip of the raw decode and of the loader (workers + main process, which turns batches
  into normalized float), and the ratio they imply on N idle cores: N * raw / (workers + main).
  CPU time per clip does not depend on what else runs on the machine; clips/s does (the cores are
  shared: see the load average printed with the results).
The main process uses one torch thread (it only consumes batches here). Every number is measured in
this run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path


def _cpu_seconds(pids: list[int]) -> float | None:
    """user + system CPU seconds of processes `pids` (Linux /proc), None elsewhere."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick
    except (OSError, ValueError, IndexError):
        return None


def raw_decode_rate(manifest, spec, decode_size: int, backend: str, repeats: int) -> float:
    from edgekd.data.decode import failure_reason, probe_cached, read_frames
    from edgekd.data.sampling import clip_indices, uniform_starts
    from edgekd.errors import VideoDecodeError

    jobs, bad = [], []
    for e in manifest.entries:
        if e.path in manifest.skipped:
            continue
        try:  # untimed first pass: page cache, codec init, and it finds the broken videos
            n = probe_cached(e.path).num_frames
            idx = clip_indices(uniform_starts(n, spec.frames, spec.frame_stride, 1), spec.frames, spec.frame_stride, n)
            read_frames(e.path, idx.ravel(), size=decode_size, backend=backend)
            jobs.append((e.path, idx.ravel()))
        except VideoDecodeError as err:
            bad.append((str(e.path), failure_reason(err, e.path)))
    manifest.skipped.add(bad)  # one warning line; the loader's workers skip them without decoding
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        for path, idx in jobs:
            read_frames(path, idx, size=decode_size, backend=backend)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return repeats * len(jobs) / elapsed, 1000 * cpu / (repeats * len(jobs))


def loader_rate(manifest, spec, backend: str, batch_size: int, workers: int, epochs: int, seed: int):
    from edgekd.data.dataset import ClipDataset, make_loader

    ds = ClipDataset(manifest, spec, mode="train", backend=backend)
    loader = make_loader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, seed=seed)
    for _ in loader:  # warm-up epoch: starts the persistent workers, fills their probe caches
        pass
    pids = [w.pid for w in getattr(loader._iterator, "_workers", [])] if workers else [os.getpid()]
    cpu0, main0 = _cpu_seconds(pids), time.process_time()
    clips, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            clips += batch["video"].shape[0]
    elapsed = time.perf_counter() - t0
    cpu1, main_cpu = _cpu_seconds(pids), time.process_time() - main0
    busy = (cpu1 - cpu0) / elapsed if cpu0 is not None and cpu1 is not None else None
    worker_ms = 1000 * (cpu1 - cpu0) / clips if busy is not None and workers else 0.0
    del loader
    return clips / elapsed, busy, worker_ms, 1000 * main_cpu / clips


def ucf101_format_set(folder: Path, reporter) -> Path:
    """6 classes x 11 videos of 40 frames (60 train), 320x240 MPEG-4 AVI, plus 3 broken files (made once)."""
    from edgekd.data.fixtures import make_ucf101

    split_dir = folder / "ucfTrainTestlist"
    if not split_dir.is_dir():
        reporter.step(f"generating a UCF101-format set in {folder} (320x240 MPEG-4 AVI)")
        make_ucf101(folder, classes=("ApplyEyeMakeup", "Archery", "BabyCrawling", "Basketball", "Biking", "Bowling"),
                    per_class=11, frames=40)
    return split_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None,
                        help="dataset path (default: the synthetic set and a generated UCF101-format set)")
    parser.add_argument("--ucf-dir", default=None, help="where to generate the UCF101-format set "
                                                          "(default: a temporary folder; reused when it exists)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="timed loader epochs after one warm-up epoch")
    parser.add_argument("--repeats", type=int, default=1, help="timed raw-decode passes over the videos")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import tempfile

    import torch
    from rich.table import Table

    import av

    from edgekd.data.decode import available_backends
    from edgekd.data.manifest import default_data_spec, load_dataset
    from edgekd.data.transforms import AugmentConfig
    from edgekd.report import Reporter

    torch.set_num_threads(1)
    reporter = Reporter()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory() as tmp:
        if args.dataset is not None:
            datasets = [("dataset", args.dataset)]
        else:
            datasets = [("synthetic (64x64 H.264)", None),
                        ("UCF101 format (320x240 MPEG-4 AVI)", ucf101_format_set(Path(args.ucf_dir or tmp), reporter))]
        table = Table(title=f"data throughput (batch {args.batch_size}, {args.workers} workers)")
        for col in ("dataset", "backend", "raw decode clips/s (1 proc)", f"loader clips/s ({args.workers} workers)",
                    "loader / raw", "cores busy", "CPU ms/clip raw", "CPU ms/clip loader (workers + main)",
                    f"loader / raw on {args.workers} idle cores"):
            table.add_column(col, justify="left" if col in ("dataset", "backend") else "right", overflow="fold")
        for label, path in datasets:
            manifest = load_dataset(path, reporter=reporter).split("train")
            spec = default_data_spec(manifest)
            decode_size = AugmentConfig.for_manifest(manifest.defaults).decode_size(spec.size)
            reporter.print(f"{label}: {manifest.source}: {len(manifest)} training videos; clip {spec.frames} frames x "
                           f"{spec.size} px, stride {spec.frame_stride}, decoded at short side {decode_size}")
            for backend in available_backends():
                raw, raw_ms = raw_decode_rate(manifest, spec, decode_size, backend, args.repeats)
                rate, busy, worker_ms, main_ms = loader_rate(manifest, spec, backend, args.batch_size, args.workers,
                                                             args.epochs, args.seed)
                idle = args.workers * raw_ms / (worker_ms + main_ms) if worker_ms else None
                table.add_row(label, backend, f"{raw:.1f}", f"{rate:.1f}", f"{rate / raw:.2f}x",
                              "-" if busy is None else f"{busy:.2f}", f"{raw_ms:.1f}",
                              f"{worker_ms:.1f} + {main_ms:.1f}", "-" if idle is None else f"{idle:.2f}x")
                reporter.print(f"{label} {backend}: raw {raw:.1f} clips/s, loader {rate:.1f} clips/s ({rate / raw:.2f}x); "
                               f"CPU ms/clip raw {raw_ms:.1f}, loader {worker_ms:.1f} + {main_ms:.1f}")
    reporter.print(table)
    end = os.getloadavg() if hasattr(os, "getloadavg") else None
    reporter.print(f"env: {platform.platform()}, python {sys.version.split()[0]}, torch {torch.__version__}, "
                   f"av {av.__version__}, {os.cpu_count()} CPUs"
                   + (f", load average {load[0]:.2f} at start, {end[0]:.2f} at end (other processes share "
                      "these cores)" if load else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
