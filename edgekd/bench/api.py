"""`bench()`: measure one exported student on one hardware profile and write the report.

    target   = run folder / export folder / checkpoint          (edgekd.bench.artifacts)
    profile  = shipped name or user TOML                        (edgekd.bench.profiles)
    for runtime in profile.runtimes, precision in profile.precisions:
        runner.load()             -> a row saying why, if it cannot run here
        latency sweep over batch sizes, end-to-end from video files, peak memory
        accuracy on the eval clips, agreement with PyTorch fp32
    roofline floors per precision; efficiency where bench runs on the profile's hardware,
    ESTIMATES (labelled) where it does not
    -> runs/NAME/bench/{report.json, report.md, pareto.png}
"""

from __future__ import annotations

import copy
import datetime as _dt
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgekd import __version__
from edgekd.bench import accuracy as acc
from edgekd.bench import latency as lat
from edgekd.bench.artifacts import Target, resolve
from edgekd.bench.env import collect, device_names, matches
from edgekd.bench.profiles import Profile, load_profile
from edgekd.bench.report import points, print_table, verdict, write_report
from edgekd.bench.runners import OrtRunner, RunnerUnavailable, TensorRTRunner, TorchRunner
from edgekd.errors import BenchError, ConfigError, EdgekdError

# Runtimes that execute on the profile's accelerator: their latency is what the roofline bounds.
ACCELERATED = {"gpu": ("tensorrt", "ort-trt", "ort-cuda", "torch-cuda"),
               "jetson": ("tensorrt", "ort-trt", "ort-cuda", "torch-cuda"),
               "cpu": ("ort-cpu", "torch-cpu")}


# ----------------------------------------------------------------------------- progress

class _Progress:
    """One rich progress bar per step (clips/s or iterations/s + ETA); silent when quiet."""

    def __init__(self, quiet: bool, console=None):
        self.quiet = quiet
        self.console = console

    @contextmanager
    def bar(self, description: str, total: int, unit: str = "it") -> Iterator:
        from rich.console import Console

        if self.quiet or total <= 0 or not (self.console or Console()).is_terminal:
            yield lambda n=1: None  # no live bar into a log file or pipe
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("[cyan]{task.fields[rate]}"),
                      TimeRemainingColumn(), console=self.console, transient=True) as progress:
            import time

            task = progress.add_task(description, total=total, rate="")
            clock = time.perf_counter
            t0 = clock()
            state = {"done": 0, "shown": 0, "next": t0}

            def advance(n: int = 1) -> None:
                # Called every iteration of a timed loop: redraw at most 10 times a second (cheap otherwise).
                state["done"] += n
                now = clock()
                if now >= state["next"] or state["done"] >= total:
                    progress.update(task, advance=state["done"] - state["shown"],
                                    rate=f"{state['done'] / max(now - t0, 1e-9):.1f} {unit}/s")
                    state["shown"], state["next"] = state["done"], now + 0.1

            yield advance


# ----------------------------------------------------------------------------- runners

def make_runner(runtime: str, precision: str, target: Target, model, profile: Profile, *,
                threads: int | None, cache_dir: Path):
    """The runner for one row; unavailable runtimes are detected in runner.load()."""
    if runtime.startswith("torch-"):
        return TorchRunner(copy.deepcopy(model) if model is not None else None, runtime.split("-", 1)[1],
                           precision, threads=threads)
    if runtime.startswith("ort-"):
        provider = runtime.split("-", 1)[1]
        if provider == "trt":  # TensorRT EP makes fp16 itself from the fp32 graph; int8 reads the Q/DQ graph
            path = target.onnx.get("int8" if precision == "int8" else "fp32")
        else:
            path = target.onnx.get(precision)
        have = ", ".join(p.name for p in target.onnx.values()) or "nothing: run `edgekd export` first"
        missing = f"the export has no {precision} ONNX (it has {have})"
        if precision == "fp16":
            missing += "; fp16 runs under ort-trt / tensorrt from the fp32 ONNX"
        return OrtRunner(path, provider, precision, threads=threads, workspace_mb=profile.workspace_mb or 1024,
                         cache_dir=cache_dir / "ort-trt-cache", missing_reason=missing)
    if runtime == "tensorrt":
        onnx = target.onnx.get("int8" if precision == "int8" else "fp32")
        return TensorRTRunner(target.engines.get(precision), onnx, precision,
                              workspace_mb=profile.workspace_mb or 1024, max_batch=max(profile.batch_sizes))
    raise ConfigError(f"unknown runtime {runtime!r}")


def _reason(e: BaseException) -> str:
    if isinstance(e, EdgekdError):
        return e.message
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}"[:300]


def bench_row(runner, *, batch_sizes: tuple[int, ...], warmup: int, iterations: int,
              evalset: acc.EvalSet, reference_top1: np.ndarray | None, spec, e2e_clips: int,
              progress: _Progress) -> dict[str, Any]:
    """Load, time, evaluate one runner; any failure becomes the row's reason."""
    row: dict[str, Any] = {"runtime": runner.name, "precision": runner.precision, "status": "ok", "reason": None,
                           "hint": None, "providers": [], "note": "", "latency": [], "end_to_end": None,
                           "accuracy": None, "peak_memory_mb": None, "memory_kind": None}
    probe = lat.MemoryProbe(runner.name).start()
    try:
        runner.load()
    except RunnerUnavailable as e:
        return {**row, "status": "unavailable", "reason": e.message, "hint": e.hint}
    except Exception as e:  # noqa: BLE001 - a runtime that breaks is a row, not a crash
        return {**row, "status": "failed", "reason": f"load failed: {_reason(e)}"}
    row["providers"], row["note"] = list(runner.providers_used), runner.why
    if getattr(runner, "input_shape", None) is not None:
        acc.check_input_shape(runner.input_shape, spec, f"{runner.name} {runner.precision} model input")
    clip = evalset.x[0]
    label = f"{runner.name} {runner.precision}"
    try:
        for b in batch_sizes:
            batch = lat.make_batch(clip, b)
            try:
                with progress.bar(f"{label} batch {b}", iterations, "it") as advance:
                    times = lat.time_calls(runner, batch, warmup, iterations, advance=advance)
                row["latency"].append(lat.summarize(times, b, spec.frames).to_dict())
            except Exception as e:  # noqa: BLE001 - e.g. a static-batch ONNX rejects batch 4
                row["latency"].append({"batch_size": b, "error": _reason(e)})
        row["peak_memory_mb"], row["memory_kind"] = probe.peak_mb(), probe.kind
        if not any("p50_ms" in s for s in row["latency"]):
            return {**row, "status": "failed", "reason": "every batch size failed: " + row["latency"][0]["error"]}
        ok_b1 = any(s.get("batch_size") == 1 and "p50_ms" in s for s in row["latency"])
        with progress.bar(f"{label} accuracy", len(evalset), "clips") as advance:
            logits = acc.predict(runner, evalset.x, batch_size=1 if ok_b1 else min(batch_sizes), advance=advance)
        row["accuracy"] = acc.score(logits, evalset.labels, reference_top1).to_dict()
        if e2e_clips > 0 and ok_b1:
            try:
                with progress.bar(f"{label} end-to-end", e2e_clips, "clips") as advance:
                    row["end_to_end"] = lat.end_to_end(runner, evalset.dataset, e2e_clips, spec.frames,
                                                       advance=advance).to_dict()
            except Exception as e:  # noqa: BLE001 - a video that fails to decode should not lose the row
                row["end_to_end"] = {"error": _reason(e)}
    except Exception as e:  # noqa: BLE001
        return {**row, "status": "failed", "reason": f"run failed: {_reason(e)}"}
    return row


# ----------------------------------------------------------------------------- the bench

def _reference(model, evalset: acc.EvalSet, progress: _Progress) -> np.ndarray | None:
    """PyTorch fp32 top-1 on the eval clips: what every artifact's agreement is measured against."""
    if model is None:
        return None
    runner = TorchRunner(copy.deepcopy(model), "cpu", "fp32")
    runner.load()
    with progress.bar("PyTorch fp32 reference", len(evalset), "clips") as advance:
        return acc.predict(runner, evalset.x, batch_size=8, advance=lambda n: advance(n)).argmax(1)


def _fp16_accuracy_only(model, evalset: acc.EvalSet, ref: np.ndarray | None, progress: _Progress):
    """fp16 arithmetic on the host CPU (torch .half()), for accuracy only, when no fp16 runtime ran here."""
    import torch

    net = copy.deepcopy(model).half().eval()
    out = []
    with progress.bar("fp16 accuracy (torch on CPU)", len(evalset), "clips") as advance, torch.inference_mode():
        for i in range(0, len(evalset), 8):
            out.append(net(torch.from_numpy(evalset.x[i:i + 8]).half()).float().numpy())
            advance(len(out[-1]))
    return acc.score(np.concatenate(out), evalset.labels, ref).to_dict()


def bench(export_dir_or_run: str | Path, profile: str | Path | Profile = "x86-cpu", *, out_dir: str | Path | None = None,
          batch_sizes: list[int] | tuple[int, ...] | None = None, iterations: int | None = None,
          eval_data: str | Path | None = None, warmup: int | None = None, eval_limit: int | None = None,
          e2e_clips: int | None = None, runtimes: list[str] | None = None, precisions: list[str] | None = None,
          threads: int | None = None, quiet: bool = False, console=None) -> Path:
    """Benchmark a run/export on `profile`; returns the bench folder (report.json, report.md, pareto.png)."""
    from edgekd.bench.roofline import count_cost, efficiency, floor

    prof = load_profile(profile)
    progress = _Progress(quiet, console)
    batch_sizes = tuple(batch_sizes or prof.batch_sizes)
    iterations = prof.iterations if iterations is None else iterations
    warmup = prof.warmup if warmup is None else warmup
    for key, values, allowed in (("runtimes", runtimes, prof.runtimes), ("precisions", precisions, prof.precisions)):
        for v in values or ():
            if v not in allowed:
                from edgekd.registry import did_you_mean

                raise ConfigError(f"{key}: {v!r} is not in profile {prof.name}'s {key} ({', '.join(allowed)})",
                                  did_you_mean(v, list(allowed)))
    if iterations < 1 or any(b < 1 for b in batch_sizes) or warmup < 0:
        raise ConfigError("iterations and batch sizes must be >= 1, warmup >= 0", "e.g. --iterations 50 --batch-sizes 1,4")
    e2e_clips = min(iterations, 20) if e2e_clips is None else e2e_clips

    target = resolve(export_dir_or_run)
    spec = target.spec
    for where, shape in target.declared_inputs:
        acc.check_input_shape(shape, spec, where)
    env = collect()
    on_target = matches(prof.match, device_names(env))
    host = env["jetson"]["model"] if env.get("jetson") else (env["gpu"] if prof.kind != "cpu" and env.get("gpu")
                                                             else f"{env['cpu']} ({env['machine']})")

    model = None
    if target.checkpoint is not None:
        from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint

        model, _ = build_student_from_checkpoint(load_checkpoint(target.checkpoint))
        model = model.float().cpu().eval()
    cost, cost_error = None, None
    if model is not None:
        try:
            cost = count_cost(copy.deepcopy(model), spec.input_shape(1))
        except Exception as e:  # noqa: BLE001 - a model FlopCounterMode cannot trace still gets measured
            cost_error = f"counting FLOPs failed: {_reason(e)}"
    else:
        cost_error = "no checkpoint: the roofline counts FLOPs and bytes from the PyTorch model"

    data = eval_data if eval_data is not None else target.dataset
    evalset = acc.load_eval_set(data, spec, limit=eval_limit, progress=progress)
    reference = _reference(model, evalset, progress)

    out = Path(out_dir) if out_dir is not None else target.bench_dir
    rows = []
    for runtime in runtimes or prof.runtimes:
        for precision in precisions or prof.precisions:
            runner = make_runner(runtime, precision, target, model, prof, threads=threads, cache_dir=out)
            row = bench_row(runner, batch_sizes=batch_sizes, warmup=warmup, iterations=iterations,
                            evalset=evalset, reference_top1=reference, spec=spec, e2e_clips=e2e_clips,
                            progress=progress)
            rows.append(row)

    # roofline: floors per precision; efficiency only for measurements on the profile's hardware
    estimates = []
    if cost is not None:
        floors = {p: floor(cost, prof, p, 1) for p in prof.precisions}
        for row in rows:
            f = floors.get(row["precision"])
            if f is None or row["runtime"] not in ACCELERATED[prof.kind]:
                row["roofline"] = None
                continue
            b1 = next((s for s in row["latency"] if s.get("batch_size") == 1 and "p50_ms" in s), None)
            row["roofline"] = {"floor_ms": f.floor_ms, "bound": f.bound,
                               "efficiency": efficiency(f.floor_ms, b1["p50_ms"]) if on_target and b1 else None}
        for p, f in floors.items():
            src = next((r for r in rows if r["precision"] == p and r.get("accuracy")), None)
            est = {**f.to_dict(), "bytes": cost.bytes(p), "top1": src["accuracy"]["top1"] if src else None,
                   "top1_from": f"{src['runtime']} {p} on this host" if src else None}
            if src is None and p == "fp16" and model is not None and not on_target:
                a = _fp16_accuracy_only(model, evalset, reference, progress)
                est.update(top1=a["top1"], top1_from="torch fp16 on the host CPU (accuracy only)")
            estimates.append(est)

    report: dict[str, Any] = {
        "edgekd_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "profile": prof.to_dict(),
        "target": {"on_target": on_target, "host": host, "host_devices": device_names(env),
                   "latency_kind": "measured" if on_target else "estimate"},
        "environment": env,
        "model": {"name": target.name, "student": target.student, "run_dir": str(target.run_dir) if target.run_dir else None,
                  "export_dir": str(target.export_dir) if target.export_dir else None,
                  "checkpoint": str(target.checkpoint) if target.checkpoint else None,
                  "checkpoint_sha256": target.checkpoint_sha256, "spec": spec.to_dict(),
                  "input_shape": list(spec.input_shape(1)),
                  "artifacts": {**{f"onnx-{k}": v.name for k, v in target.onnx.items()},
                                **{f"engine-{k}": v.name for k, v in target.engines.items()}}},
        "settings": {"batch_sizes": list(batch_sizes), "warmup": warmup, "iterations": iterations,
                     "e2e_clips": e2e_clips, "threads": threads},
        "eval": evalset.describe(),
        "cost": cost.to_dict() if cost else None,
        "cost_error": cost_error,
        "rows": rows,
        "estimates": estimates,
    }
    report["verdict"] = verdict(points(report), prof.budget_ms, prof.device)
    write_report(report, out)
    if not quiet:
        print_table(report, console)
    return out


def bench_many(targets: list[str | Path], profile: str | Path | Profile = "x86-cpu", *,
               merged_dir: str | Path | None = None, **kwargs: Any) -> tuple[list[Path], Path | None, dict[str, Any] | None]:
    """Bench several runs on one profile and merge them into one Pareto plot (when more than one)."""
    from edgekd.bench.report import load_report, merge

    if kwargs.get("out_dir") is not None and len(targets) > 1:
        raise BenchError("--out names one bench folder; with several runs each writes runs/NAME/bench",
                         "drop --out, or use --merged-out for the combined Pareto plot")
    dirs = [bench(t, profile, **kwargs) for t in targets]
    if len(dirs) < 2:
        return dirs, None, None
    merged = Path(merged_dir) if merged_dir else dirs[0].parent.parent / "bench-compare"
    out, _, v = merge([load_report(d) for d in dirs], merged)
    return dirs, out, v
