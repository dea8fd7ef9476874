"""Latency done right: warm up, synchronize the device around every timed call, report percentiles.

    engine time   runner.run(batch) + runner.synchronize() on a batch already decoded and normalized
                  (for GPU runtimes this includes the host->device copy of the batch and the copy back)
    end-to-end    decode the clip from the video file + preprocess (resize, crop, normalize) + engine,
                  one clip at a time, as a streaming application would see it

Peak memory: torch.cuda.max_memory_allocated for PyTorch on CUDA; the growth of device memory in use
(cudaMemGetInfo) for other CUDA runtimes, whose allocators torch cannot see; and on the CPU the growth
of the process's peak resident set (VmHWM, reset through /proc/self/clear_refs) from before the
runner loaded to the end of its measurements.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np


@dataclass
class LatencyStats:
    """Per-call times of one batch size, in milliseconds; throughput from the mean."""

    batch_size: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    clips_per_s: float
    frames_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def summarize(times_s: list[float] | np.ndarray, batch_size: int = 1, frames: int = 1) -> LatencyStats:
    """Percentiles (linear interpolation) of per-call times given in seconds."""
    t = np.asarray(times_s, dtype=np.float64) * 1e3
    if t.size == 0:
        raise ValueError("no timings to summarize")
    p50, p90, p99 = np.percentile(t, [50, 90, 99])
    mean = float(t.mean())
    clips = batch_size * 1e3 / mean if mean > 0 else float("inf")
    return LatencyStats(batch_size=batch_size, iterations=int(t.size), p50_ms=float(p50), p90_ms=float(p90),
                        p99_ms=float(p99), mean_ms=mean, std_ms=float(t.std(ddof=1)) if t.size > 1 else 0.0,
                        min_ms=float(t.min()), max_ms=float(t.max()), clips_per_s=clips,
                        frames_per_s=clips * frames)


def time_calls(runner, batch: np.ndarray, warmup: int, iterations: int,
               advance: Callable[[], None] | None = None) -> list[float]:
    """`warmup` untimed calls, then `iterations` timed ones; each timed window ends after synchronize()."""
    run, sync, clock = runner.run, runner.synchronize, time.perf_counter
    for _ in range(warmup):
        run(batch)
    sync()
    times = []
    for _ in range(iterations):
        t0 = clock()
        run(batch)
        sync()
        times.append(clock() - t0)
        if advance is not None:  # outside the timed window
            advance()
    return times


def make_batch(clip: np.ndarray, batch_size: int) -> np.ndarray:
    """(3, T, H, W) clip -> (B, 3, T, H, W) contiguous float32 batch of copies."""
    return np.repeat(np.asarray(clip, dtype=np.float32)[None], batch_size, axis=0)  # a writable copy


# ----------------------------------------------------------------------------- peak memory

def _vm_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc malloc_trim), so the RSS the
    next row starts from holds only what is live."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class MemoryProbe:
    """Peak memory growth across a block: start() before the runner loads, peak_mb() at the end."""

    def __init__(self, runtime: str):
        self.runtime = runtime
        self.kind = "rss"

    def start(self) -> "MemoryProbe":
        if self.runtime == "torch-cuda" and self._cuda():
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.kind, self.base = "cuda_max_allocated", torch.cuda.memory_allocated()
        elif self.runtime in ("ort-cuda", "ort-trt", "tensorrt") and self._cuda():
            import torch

            free, total = torch.cuda.mem_get_info()
            self.kind, self.base = "cuda_used_delta", total - free
        else:
            _release_freed_memory()  # or the row reuses pages an earlier row freed, and its growth reads 0
            try:  # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
                Path("/proc/self/clear_refs").write_text("5")
                self.kind, self.base = "rss_peak_delta", _vm_kb("VmRSS")
            except OSError:
                self.kind, self.base = "maxrss_delta", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    @staticmethod
    def _cuda() -> bool:
        try:
            import torch

            return torch.cuda.is_available()
        except Exception:  # noqa: BLE001
            return False

    def peak_mb(self) -> float | None:
        if self.kind == "cuda_max_allocated":
            import torch

            return (torch.cuda.max_memory_allocated() - self.base) / 2**20
        if self.kind == "cuda_used_delta":
            import torch

            free, total = torch.cuda.mem_get_info()
            return (total - free - self.base) / 2**20
        if self.kind == "rss_peak_delta":
            hwm = _vm_kb("VmHWM")
            return None if hwm is None or self.base is None else max(0, hwm - self.base) / 1024
        return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.base) / 1024


# ----------------------------------------------------------------------------- end to end

@dataclass
class EndToEndStats:
    """Streaming one clip at a time: decode + preprocess, engine, and their sum, per clip."""

    clips: int
    decode_preprocess: LatencyStats
    engine: LatencyStats
    total: LatencyStats

    def to_dict(self) -> dict[str, Any]:
        return {"clips": self.clips, "decode_preprocess": self.decode_preprocess.to_dict(),
                "engine": self.engine.to_dict(), "total": self.total.to_dict()}


def end_to_end(runner, dataset, n: int, frames: int, warmup: int = 1,
               advance: Callable[[], None] | None = None) -> EndToEndStats:
    """Time `dataset[i]` (decode + transforms, edgekd.data.ClipDataset) then the engine, for n clips.

    Videos are cycled when n exceeds the dataset; the first `warmup` clips are not timed (cold
    decoder and engine). Decoding failures propagate: the caller turns them into a row reason.
    """
    clock = time.perf_counter
    size = len(dataset)
    dec, eng, tot = [], [], []
    for i in range(warmup + n):
        t0 = clock()
        item = dataset[i % size]
        if "error" in item:  # ClipDataset reports a broken video instead of raising
            from edgekd.errors import VideoDecodeError

            raise VideoDecodeError(item["error"])
        x = item["video"].numpy()[None].astype(np.float32, copy=False)  # (1, 3, T, H, W)
        t1 = clock()
        runner.run(x)
        runner.synchronize()
        t2 = clock()
        if i >= warmup:
            dec.append(t1 - t0)
            eng.append(t2 - t1)
            tot.append(t2 - t0)
            if advance is not None:
                advance()
    return EndToEndStats(clips=n, decode_preprocess=summarize(dec, 1, frames), engine=summarize(eng, 1, frames),
                         total=summarize(tot, 1, frames))
