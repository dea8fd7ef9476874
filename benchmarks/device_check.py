"""GPU check for a lent machine: one table and one JSON, in a few minutes, nothing downloaded.

    bash benchmarks/device_check.sh            (or: python benchmarks/device_check.py --json out.json)

Measures, on the first CUDA device:
  1. training throughput of r3d_18 at 8x112x112 with AMP (the distill step: CE on labels + KL to cached
     teacher logits, AdamW), clips/s and GPU utilization, twice: clips already on the GPU (compute
     only) and clips copied each step from a pinned host clip bank as uint8 and normalized on the
     GPU (what a pre-decoded loader feeds). "input-bound" when the fed run is > 10% slower.
  2. torch-cuda latency of four students at batch 1 and 32, FP32 and FP16, CUDA graphs off and on,
     with roofline efficiency against the device's profile (h200 / h100 by name, else h100).
  3. one NCCL DistributedDataParallel step in a single process (world size 1).
Without CUDA it prints why and exits 0 (a skip, not a failure). Data: synthetic in-memory tensors
(there is no video decoder on the GPU machines); the weights are random: throughput and latency do
not depend on them.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

STUDENTS = ("tiny3d", "r3d_18", "x3d_xs", "mobilenet_v3_small_tsm")
FRAMES, SIZE, CLASSES = 8, 112, 101


def skip_reason() -> str | None:
    try:
        import torch
    except ImportError as e:
        return f"torch is not importable ({e})"
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
        return f"no CUDA device visible (torch {torch.__version__}, {build})"
    return None


class GpuUtil:
    """Samples nvidia-smi's utilization.gpu every 0.2 s while active; None when nvidia-smi is absent."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._t = None

    def _loop(self):
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                      "-i", "0"], capture_output=True, text=True, timeout=2).stdout
                self.samples.append(float(out.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return
            self._stop.wait(0.2)

    def __enter__(self):
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(timeout=3)

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def build(name: str):
    from edgekd.students import build_student

    return build_student(name, num_classes=CLASSES, frames=FRAMES, size=SIZE)


def train_throughput(batch: int, steps: int, warmup: int) -> dict:
    """r3d_18 distill steps/s with AMP: clips resident on the GPU vs fed from a pinned uint8 host bank."""
    import torch
    import torch.nn.functional as F

    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = build("r3d_18").to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    mean = torch.tensor([0.45, 0.45, 0.45], device=dev).view(1, 3, 1, 1, 1)
    std = torch.tensor([0.225, 0.225, 0.225], device=dev).view(1, 3, 1, 1, 1)
    # a pre-decoded clip bank as a loader would hold it: uint8 (N, 3, T, H, W), pinned for async copies
    bank = torch.randint(0, 256, (4 * batch, 3, FRAMES, SIZE, SIZE), dtype=torch.uint8).pin_memory()
    labels = torch.randint(0, CLASSES, (4 * batch,)).pin_memory()
    teacher = torch.randn(4 * batch, CLASSES).pin_memory()  # cached teacher logits

    def step(x, y, t):
        with torch.autocast("cuda", dtype=amp_dtype):
            logits = model(x)
            loss = F.cross_entropy(logits, y) + F.kl_div(F.log_softmax(logits.float() / 4, 1),
                                                         F.softmax(t / 4, 1), reduction="batchmean") * 16
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def feed(i):
        s = slice((i % 4) * batch, (i % 4 + 1) * batch)
        x = bank[s].to(dev, non_blocking=True).float().div_(255).sub_(mean).div_(std)
        return x, labels[s].to(dev, non_blocking=True), teacher[s].to(dev, non_blocking=True)

    resident = feed(0)
    out = {"student": "r3d_18", "input": [batch, 3, FRAMES, SIZE, SIZE], "amp": str(amp_dtype).split(".")[-1]}
    for mode in ("resident", "fed"):
        for i in range(warmup):
            step(*(resident if mode == "resident" else feed(i)))
        torch.cuda.synchronize()
        with GpuUtil() as util:
            t0 = time.perf_counter()
            for i in range(steps):
                step(*(resident if mode == "resident" else feed(i)))
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
        out[mode] = {"clips_per_s": steps * batch / dt, "gpu_util_pct": util.mean, "steps": steps}
    out["input_bound"] = out["fed"]["clips_per_s"] < 0.9 * out["resident"]["clips_per_s"]
    out["max_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return out


def latency(name: str, batch: int, precision: str, graphs: bool, iters: int, warmup: int) -> float:
    """Median ms per forward (CUDA events), eager or replayed from a captured CUDA graph."""
    import torch

    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = build(name).to("cuda", dtype).eval()
    x = torch.randn(batch, 3, FRAMES, SIZE, SIZE, device="cuda", dtype=dtype)
    with torch.inference_mode():
        if graphs:
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    model(x)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                model(x)
            fn = g.replay
        else:
            def fn():
                model(x)
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(iters):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


@functools.lru_cache(maxsize=None)
def _cost(name: str):
    from edgekd.bench.roofline import count_cost

    return count_cost(build(name).eval(), (1, 3, FRAMES, SIZE, SIZE))


def roofline_floor_ms(name: str, profile, precision: str, batch: int) -> float:
    from edgekd.bench.roofline import floor

    return floor(_cost(name), profile, precision, batch).floor_ms


def ddp_step() -> dict:
    """One DDP forward/backward/step over NCCL with world size 1 (checks the NCCL path, not scaling)."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        torch.cuda.set_device(0)
        model = DDP(build("tiny3d").cuda(), device_ids=[0])
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(8, 3, FRAMES, SIZE, SIZE, device="cuda")
        y = torch.randint(0, CLASSES, (8,), device="cuda")
        times = []
        for _ in range(4):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        t = torch.ones(1, device="cuda")
        dist.all_reduce(t)
        return {"backend": dist.get_backend(), "world_size": dist.get_world_size(), "loss": float(loss),
                "step_ms_first": times[0] * 1e3, "step_ms": min(times[1:]) * 1e3, "all_reduce_ok": float(t) == 1.0,
                "nccl": ".".join(map(str, torch.cuda.nccl.version()))}
    finally:
        dist.destroy_process_group()


def _row(section, cells):
    return {"section": section, **cells}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = ap.parse_args(argv)
    env = {"python": platform.python_version(), "host": platform.node(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    reason = skip_reason()
    if reason is not None:
        result = {"skipped": True, "reason": reason, "env": env}
        print(f"device check skipped: {reason}. Run it on a machine with an NVIDIA GPU and a CUDA build of torch.")
        print(json.dumps(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0

    import torch

    from edgekd.runtime.profiles import load_profile

    name = torch.cuda.get_device_name(0)
    profile = load_profile("h200" if "H200" in name else "h100")
    env.update(gpu=name, capability=".".join(map(str, torch.cuda.get_device_capability(0))), torch=torch.__version__,
               cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), roofline_profile=profile.name)
    torch.backends.cudnn.benchmark = True
    iters, warm = (10, 3) if args.quick else (50, 10)
    t_start = time.perf_counter()
    result: dict = {"skipped": False, "env": env, "train": None, "latency": [], "ddp": None, "errors": []}

    try:
        result["train"] = train_throughput(batch=32, steps=5 if args.quick else 30, warmup=3 if args.quick else 5)
    except Exception as e:  # noqa: BLE001 - one failing section is a row that says why
        result["errors"].append(f"train: {type(e).__name__}: {e}")
    for student in STUDENTS:
        for precision in ("fp32", "fp16"):
            for batch in (1, 32):
                try:
                    floor_ms = roofline_floor_ms(student, profile, precision, batch)
                except Exception as e:  # noqa: BLE001
                    floor_ms = None
                    result["errors"].append(f"roofline {student}: {type(e).__name__}: {e}")
                for graphs in (False, True):
                    row = {"student": student, "precision": precision, "batch": batch, "cuda_graphs": graphs}
                    try:
                        ms = latency(student, batch, precision, graphs, iters, warm)
                        row.update(ms=ms, clips_per_s=batch / ms * 1e3,
                                   roofline_floor_ms=floor_ms, efficiency=(floor_ms / ms) if floor_ms else None)
                    except Exception as e:  # noqa: BLE001
                        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
                    result["latency"].append(row)
                    torch.cuda.empty_cache()
    try:
        result["ddp"] = ddp_step()
    except Exception as e:  # noqa: BLE001
        result["errors"].append(f"ddp: {type(e).__name__}: {e}")
    result["seconds"] = time.perf_counter() - t_start

    print_table(result)
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if not result["errors"] else 1


def print_table(r: dict) -> None:
    """One plain-text table (no terminal assumptions): a line per measurement."""
    e = r["env"]
    print(f"# device check: {e['gpu']} (sm {e['capability']}), torch {e['torch']}, CUDA {e['cuda']}, "
          f"{e['date']}, {r['seconds']:.0f} s; roofline vs {e['roofline_profile']}")
    print(f"{'what':<44} {'value':>12}  note")
    t = r.get("train")
    if t:
        for mode in ("resident", "fed"):
            util = t[mode]["gpu_util_pct"]
            print(f"{'train r3d_18 8x112 AMP b32 (' + mode + ')':<44} {t[mode]['clips_per_s']:>8.1f} c/s  "
                  f"GPU util {'-' if util is None else f'{util:.0f}%'}")
        print(f"{'train input-bound':<44} {str(t['input_bound']):>12}  fed/resident = "
              f"{t['fed']['clips_per_s'] / t['resident']['clips_per_s']:.2f}")
    for row in r["latency"]:
        label = f"{row['student']} {row['precision']} b{row['batch']} graphs={'on' if row['cuda_graphs'] else 'off'}"
        if "error" in row:
            print(f"{label:<44} {'error':>12}  {row['error']}")
        else:
            eff = row["efficiency"]
            print(f"{label:<44} {row['ms']:>9.3f} ms  {row['clips_per_s']:.0f} clips/s, roofline "
                  f"{'-' if eff is None else f'{100 * eff:.1f}%'}")
    d = r.get("ddp")
    if d:
        print(f"{'DDP step (NCCL ' + d['nccl'] + ', world 1)':<44} {d['step_ms']:>9.2f} ms  "
              f"first {d['step_ms_first']:.0f} ms, all_reduce ok={d['all_reduce_ok']}")
    for err in r["errors"]:
        print(f"error: {err}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
    sys.exit(main())
