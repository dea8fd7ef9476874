"""Training throughput (clips/s) of the default student and recipe here, and of r3d_18 on a CUDA GPU.

    python benchmarks/train_throughput.py                 # CPU: tiny3d + the default recipe
    python benchmarks/train_throughput.py --end-to-end    # plus one real epoch (decoding included)

CPU section: optimizer steps on random clips of the default shape (no decoding), for the student
alone (supervised) and with the default recipe's teachers, channels-last on and off; printed as
clips/s and as ratios measured in this one run. --end-to-end adds one epoch of `edgekd distill`'s
default on the synthetic dataset, whose clips/s includes decoding and augmentation.

CUDA section (when a GPU is present): r3d_18 at 8x112x112, supervised steps with AMP on/off and
channels-last on/off: clips/s, mean GPU utilization sampled by NVML (pynvml) or nvidia-smi during the
timed steps, and peak memory.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import threading
import time

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from edgekd.report import Reporter

console = Console()


def step_throughput(student, teachers, recipe, x, y, steps: int, channels_last: bool, device, amp_dtype=None,
                    warmup: int = 2) -> float:
    """clips/s of full optimizer steps (student fwd+bwd, teachers fwd, recipe loss) on fixed tensors."""
    from edgekd.distill.recipes import Batch, StudentOut
    from edgekd.distill.teacher_bank import TeacherBank
    from edgekd.distill.train import DistillModel, _channels_last

    model = DistillModel(student).to(device)
    fmt = _channels_last(model) if channels_last else None
    xs = x.contiguous(memory_format=fmt) if fmt is not None else x
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    bank = TeacherBank(teachers).to(device)
    n_clips = recipe.clips_per_video() if recipe is not None else 1
    clips = x.unsqueeze(1).expand(-1, n_clips, *x.shape[1:]) if n_clips > 1 else None
    batch = Batch(x=xs, labels=y[: len(y) // 3], clips=clips)  # 1/3 labeled, 2/3 unlabeled (8 + 16)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    def one() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            f, logits, _ = model(xs)
            if recipe is None:
                loss = F.cross_entropy(logits.float(), y)
            else:
                bank.new_step()
                terms, _ = recipe.losses(StudentOut(f, logits, None), batch, bank, 2)
                loss = sum(terms.values())
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(warmup):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * x.shape[0] / (time.perf_counter() - t0)


def cpu_section(steps: int, end_to_end: bool) -> None:
    from edgekd.data.manifest import default_data_spec, load_dataset
    from edgekd.data.splits import make_split
    from edgekd.distill.config import load_config
    from edgekd.distill.recipes import build_recipe, choose_recipe
    from edgekd.distill.teacher_bank import load_teachers
    from edgekd.students import build_student

    cfg = load_config()
    manifest = load_dataset(None)
    spec = default_data_spec(manifest)
    split = make_split(manifest.split("train"), labeled_fraction=cfg.data.labeled, seed=cfg.data.split_seed)
    if cfg.recipe.name == "auto":  # as `edgekd distill` resolves it: from the data
        cfg.recipe.name, _ = choose_recipe(cfg, manifest, unlabeled=len(split.unlabeled))
    recipe = build_recipe(cfg)
    bank = load_teachers(cfg, recipe, manifest, split, spec, reporter=Reporter(console))
    B = cfg.train.batch_size + cfg.train.unlabeled_batch_size
    torch.manual_seed(0)
    x = torch.randn(B, 3, spec.frames, spec.size, spec.size)
    y = torch.randint(0, spec.num_classes, (B,))
    dev = torch.device("cpu")
    rows = []
    for label, rec, teachers in (("student only (supervised)", None, {}),
                                 (f"student + {recipe.name} teachers", recipe, bank.teachers)):
        for cl in (False, True):
            student = build_student(cfg.student.name, spec.num_classes, spec.frames, spec.size, **cfg.student.kwargs())
            rows.append((label, cl, step_throughput(student, teachers, rec, x, y, steps, cl, dev)))
    t = Table(title=f"CPU training steps: {cfg.student.name} {spec.frames}x{spec.size}x{spec.size}, batch {B}, "
                    f"{torch.get_num_threads()} threads")
    for c in ("workload", "channels-last", "clips/s"):
        t.add_column(c, justify="right" if c == "clips/s" else "left")
    for label, cl, v in rows:
        t.add_row(label, "on" if cl else "off", f"{v:.1f}")
    console.print(t)
    console.print(f"channels-last speed-up: student only {rows[1][2] / rows[0][2]:.2f}x, "
                  f"with teachers {rows[3][2] / rows[2][2]:.2f}x; teachers cost "
                  f"{100 * (1 - rows[3][2] / rows[1][2]):.0f}% of the student-only rate (channels-last on)")
    if end_to_end:
        import tempfile

        from edgekd.distill.train import distill, read_metrics

        with tempfile.TemporaryDirectory() as tmp:
            run = distill(load_config(None, ["train.epochs=1", f"run.dir={tmp}", "run.baseline=false"]), reporter=Reporter(console))
            m = read_metrics(run)[0]
        console.print(f"end to end (decode + augment + train, 1 epoch of the default run): {m['clips_per_s']:.1f} clips/s "
                      f"= {m['clips_per_s'] / rows[3][2]:.2f}x the tensor-only step rate")


class GpuSampler:
    """Mean GPU utilization (%) over a window, from NVML or nvidia-smi, sampled every 0.1 s."""

    def __init__(self, index: int = 0):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._read = None
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._read = lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            self.source = "pynvml"
        except Exception:  # noqa: BLE001 - pynvml missing or unusable: try the CLI
            if shutil.which("nvidia-smi"):
                cmd = ["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
                self._read = lambda: float(subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout.strip())
                self.source = "nvidia-smi"
            else:
                self.source = "unavailable"

    def __enter__(self):
        if self._read is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self._read())
            except Exception:  # noqa: BLE001
                pass
            self._stop.wait(0.1)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._read is not None:
            self._thread.join(timeout=2)

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def cuda_section(steps: int, batch: int) -> None:
    from edgekd.students import build_student

    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    x = torch.randn(batch, 3, 8, 112, 112, device=dev)
    y = torch.randint(0, 101, (batch,), device=dev)
    t = Table(title=f"CUDA training steps: r3d_18 8x112x112, batch {batch}, {torch.cuda.get_device_name(0)}")
    for c in ("AMP", "channels-last", "clips/s", "GPU util", "peak memory"):
        t.add_column(c, justify="right")
    rates = {}
    for amp in (False, True):
        for cl in (False, True):
            torch.manual_seed(0)
            student = build_student("r3d_18", num_classes=101, frames=8, size=112)
            torch.cuda.reset_peak_memory_stats()
            step_throughput(student, {}, None, x, y, 3, cl, dev, amp_dtype if amp else None)  # cudnn autotune
            with GpuSampler() as gpu:
                rate = step_throughput(student, {}, None, x, y, steps, cl, dev, amp_dtype if amp else None, warmup=0)
            rates[(amp, cl)] = rate
            util = "n/a" if gpu.mean is None else f"{gpu.mean:.0f}% ({gpu.source})"
            t.add_row(str(amp_dtype).replace("torch.", "") if amp else "off", "on" if cl else "off", f"{rate:.0f}",
                      util, f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    console.print(t)
    console.print(f"AMP speed-up {rates[(True, True)] / rates[(False, True)]:.2f}x (channels-last on); "
                  f"channels-last speed-up {rates[(True, True)] / rates[(True, False)]:.2f}x (AMP on)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6, help="timed optimizer steps per row (CPU)")
    ap.add_argument("--cuda-steps", type=int, default=30, help="timed optimizer steps per row (CUDA)")
    ap.add_argument("--cuda-batch", type=int, default=32)
    ap.add_argument("--end-to-end", action="store_true", help="also time one real epoch with decoding")
    ap.add_argument("--skip-cpu", action="store_true")
    args = ap.parse_args()
    if not args.skip_cpu:
        cpu_section(args.steps, args.end_to_end)
    if torch.cuda.is_available():
        cuda_section(args.cuda_steps, args.cuda_batch)
    else:
        console.print("no CUDA GPU here: the r3d_18 8x112x112 AMP section is skipped")


if __name__ == "__main__":
    main()
