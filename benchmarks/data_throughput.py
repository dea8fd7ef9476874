"""Clips/s delivered by the DataLoader vs the raw decode rate of the same files, per backend.

    python benchmarks/data_throughput.py [--dataset PATH] [--batch-size 16] [--workers 2] [--epochs 2]

For each decode backend:
- raw decode: one process, one thread, `read_frames` of one clip per training video (same frame
  count, stride and decode size as the loader), no transforms;
- loader: `ClipDataset(mode="train")` (random clip + augmentation + normalize) through `make_loader`
  with N persistent workers, after one warm-up epoch;
- ratio = loader clips/s / raw decode clips/s (above 1: the workers add parallelism faster than the
  transforms cost), and how many CPU cores the workers kept busy (from /proc, Linux only).
Defaults to the embedded synthetic dataset. Every number is measured in this run.
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
    from edgekd.data.decode import probe_cached, read_frames
    from edgekd.data.sampling import clip_indices, uniform_starts

    jobs = []
    for e in manifest.entries:
        n = probe_cached(e.path).num_frames
        idx = clip_indices(uniform_starts(n, spec.frames, spec.frame_stride, 1), spec.frames, spec.frame_stride, n)
        jobs.append((e.path, idx.ravel()))
    for path, idx in jobs[:5]:  # warm-up: page cache, codec init
        read_frames(path, idx, size=decode_size, backend=backend)
    t0 = time.perf_counter()
    for _ in range(repeats):
        for path, idx in jobs:
            read_frames(path, idx, size=decode_size, backend=backend)
    elapsed = time.perf_counter() - t0
    return repeats * len(jobs) / elapsed


def loader_rate(manifest, spec, backend: str, batch_size: int, workers: int, epochs: int, seed: int):
    from edgekd.data.dataset import ClipDataset, make_loader

    ds = ClipDataset(manifest, spec, mode="train", backend=backend)
    loader = make_loader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, seed=seed)
    for _ in loader:  # warm-up epoch: starts the persistent workers, fills their probe caches
        pass
    pids = [w.pid for w in getattr(loader._iterator, "_workers", [])] if workers else [os.getpid()]
    cpu0 = _cpu_seconds(pids)
    clips, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            clips += batch["video"].shape[0]
    elapsed = time.perf_counter() - t0
    cpu1 = _cpu_seconds(pids)
    busy = (cpu1 - cpu0) / elapsed if cpu0 is not None and cpu1 is not None else None
    del loader
    return clips / elapsed, busy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="dataset path (default: embedded synthetic)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="timed loader epochs after one warm-up epoch")
    parser.add_argument("--repeats", type=int, default=1, help="timed raw-decode passes over the videos")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    from rich.console import Console
    from rich.table import Table

    import av

    from edgekd.data.decode import available_backends
    from edgekd.data.manifest import default_data_spec, load_dataset
    from edgekd.data.transforms import AugmentConfig

    console = Console()
    manifest = load_dataset(args.dataset).split("train")
    spec = default_data_spec(manifest)
    decode_size = AugmentConfig.for_manifest(manifest.defaults).decode_size(spec.size)
    console.print(f"dataset {manifest.source}: {len(manifest)} training videos; clip {spec.frames} frames x "
                  f"{spec.size} px, stride {spec.frame_stride}, decoded at short side {decode_size}")

    table = Table(title=f"data throughput (batch {args.batch_size}, {args.workers} workers)")
    for col in ("backend", "raw decode clips/s (1 proc)", f"loader clips/s ({args.workers} workers)",
                "loader / raw", "cores busy"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for backend in available_backends():
        raw = raw_decode_rate(manifest, spec, decode_size, backend, args.repeats)
        rate, busy = loader_rate(manifest, spec, backend, args.batch_size, args.workers, args.epochs, args.seed)
        table.add_row(backend, f"{raw:.1f}", f"{rate:.1f}", f"{rate / raw:.2f}x", "-" if busy is None else f"{busy:.2f}")
        console.print(f"{backend}: raw {raw:.1f} clips/s, loader {rate:.1f} clips/s")
    console.print(table)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    console.print(f"env: {platform.platform()}, python {sys.version.split()[0]}, torch {torch.__version__}, "
                  f"av {av.__version__}, {os.cpu_count()} CPUs"
                  + (f", load average {load[0]:.2f} (other processes share these cores)" if load else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
