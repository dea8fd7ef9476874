import time

import numpy as np
import pytest

from edgekd.bench.latency import MemoryProbe, end_to_end, make_batch, summarize, time_calls


class SleepRunner:
    """A runner with a known cost: every call sleeps `delay` seconds."""

    name, precision, providers_used, why = "sleep", "fp32", ["time.sleep"], ""

    def __init__(self, delay: float):
        self.delay = delay
        self.calls = 0
        self.synced = 0

    def load(self) -> None:
        pass

    def run(self, batch):
        self.calls += 1
        time.sleep(self.delay)
        return np.zeros((len(batch), 4), np.float32)

    def synchronize(self) -> None:
        self.synced += 1


def test_known_delay_gives_p50_close_to_it():
    delay = 0.02
    r = SleepRunner(delay)
    times = time_calls(r, make_batch(np.zeros((3, 2, 4, 4), np.float32), 2), warmup=3, iterations=25)
    assert r.calls == 28 and r.synced == 26  # warm-up ends with one sync, then one per timed call
    s = summarize(times, batch_size=2, frames=8)
    assert delay * 1e3 <= s.p50_ms <= delay * 1e3 + 8  # sleep never returns early; scheduling adds a little
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p99_ms <= s.max_ms
    assert s.clips_per_s == pytest.approx(2 * 1e3 / s.mean_ms)
    assert s.frames_per_s == pytest.approx(8 * s.clips_per_s)


class AsyncRunner(SleepRunner):
    """A GPU-like runner: run() only queues the work and returns at once; synchronize() waits for it."""

    def run(self, batch):
        self.calls += 1
        return np.zeros((len(batch), 4), np.float32)

    def synchronize(self) -> None:
        self.synced += 1
        time.sleep(self.delay)


def test_timed_window_includes_the_device_work_synchronize_waits_for():
    delay = 0.02
    times = time_calls(AsyncRunner(delay), make_batch(np.zeros((3, 2, 4, 4), np.float32), 1), warmup=1, iterations=5)
    assert min(times) >= delay  # a timer stopped before synchronize() reads ~0 ms


def test_end_to_end_engine_time_includes_synchronize():
    import torch

    delay = 0.02
    clips = [{"video": torch.zeros(3, 2, 4, 4)}] * 2  # what ClipDataset[i] gives: decode cost ~0 here
    s = end_to_end(AsyncRunner(delay), clips, n=4, frames=2, warmup=1)
    assert s.engine.min_ms >= delay * 1e3 and s.total.min_ms >= delay * 1e3
    assert s.decode_preprocess.max_ms < delay * 1e3  # the wait is the engine's, not the decoder's


def test_summarize_exact_percentiles():
    s = summarize(np.arange(1, 101) / 1e3)  # 1..100 ms
    assert s.p50_ms == pytest.approx(50.5) and s.p90_ms == pytest.approx(90.1) and s.p99_ms == pytest.approx(99.01)
    assert s.mean_ms == pytest.approx(50.5) and s.std_ms == pytest.approx(np.arange(1, 101).std(ddof=1))
    assert s.iterations == 100


def test_make_batch_is_a_writable_copy():
    clip = np.random.default_rng(0).standard_normal((3, 2, 4, 4)).astype(np.float32)
    b = make_batch(clip, 3)
    assert b.shape == (3, 3, 2, 4, 4) and b.flags.writeable and np.array_equal(b[2], clip)


def test_memory_probe_sees_a_cpu_allocation():
    probe = MemoryProbe("ort-cpu").start()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    peak = probe.peak_mb()
    del block
    assert probe.kind in ("rss_peak_delta", "maxrss_delta")
    assert peak >= 48
