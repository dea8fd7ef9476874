"""`bench()`: measure one exported student on one hardware profile and write the report.

    target   = run folder / export folder / checkpoint          (edgekd.bench.artifacts)
    profile  = "host" (this machine, measured peaks), a shipped name or a user TOML (edgekd.runtime.profiles)
    for runtime in profile.runtimes, precision in profile.precisions:
        runner.load()             -> a row saying why, if it cannot run here
        latency sweep over batch sizes, end-to-end from video files, peak memory
        accuracy on the eval clips (edgekd.runtime.evalset + metrics), agreement with PyTorch fp32
        the workload: real-time streams one device sustains, keeps up or not
    on the profile's hardware: roofline efficiency against its peaks (measured ones for "host");
    elsewhere: per-layer latency ESTIMATES with their error band (edgekd.bench.predictor)
    -> runs/NAME/bench/{report.json, report.md, pareto.png}
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from edgekd import __version__
from edgekd.bench import latency as lat
from edgekd.bench.artifacts import resolve
from edgekd.bench.report import points, verdict, workload, write_report
from edgekd.errors import BenchError, ConfigError, EdgekdError
from edgekd.runtime.evalset import EvalSet, build_evalset, check_input_shape
from edgekd.runtime.host import collect, device_names, matches
from edgekd.runtime.metrics import agreement, classification
from edgekd.runtime.profiles import Profile, load_profile
from edgekd.runtime.runners import RunnerUnavailable, TorchRunner, logits, make_runner
from edgekd.runtime.stream import STREAM_FILE

# Runtimes that execute on the profile's accelerator: their latency is what the roofline bounds.
ACCELERATED = {"gpu": ("tensorrt", "ort-trt", "ort-cuda", "torch-cuda"),
               "jetson": ("tensorrt", "ort-trt", "ort-cuda", "torch-cuda"),
               "cpu": ("ort-cpu", "torch-cpu")}


@dataclasses.dataclass
class BenchRequest:
    """How to bench; None = the profile's setting. `bench(target, profile, **fields)` builds one."""

    out_dir: str | Path | None = None
    batch_sizes: tuple[int, ...] | list[int] | None = None
    iterations: int | None = None
    warmup: int | None = None
    eval_data: str | Path | None = None
    eval_limit: int | None = None           # None: the whole test split (as export and training)
    e2e_clips: int | None = None
    runtimes: list[str] | None = None
    precisions: list[str] | None = None
    threads: int | None = None
    streaming: bool = True                  # also measure student.stream.onnx when the export has one


def _reason(e: BaseException) -> str:
    if isinstance(e, EdgekdError):
        return e.message
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}"[:300]


def bench_row(runner, *, batch_sizes: tuple[int, ...], warmup: int, iterations: int,
              evalset: EvalSet, reference: np.ndarray | None, spec, e2e_clips: int, rep) -> dict[str, Any]:
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
        check_input_shape(runner.input_shape, spec, f"{runner.name} {runner.precision} model input")
    clip = evalset.x[0]
    label = f"{runner.name} {runner.precision}"
    try:
        for b in batch_sizes:
            batch = lat.make_batch(clip, b)
            try:
                with rep.bar(f"{label} batch {b}", iterations, "it") as bar:
                    times = lat.time_calls(runner, batch, warmup, iterations, advance=bar.advance)
                row["latency"].append(lat.summarize(times, b, spec.frames).to_dict())
            except Exception as e:  # noqa: BLE001 - e.g. a static-batch ONNX rejects batch 4
                row["latency"].append({"batch_size": b, "error": _reason(e)})
        row["peak_memory_mb"], row["memory_kind"] = probe.peak_mb(), probe.kind
        if not any("p50_ms" in s for s in row["latency"]):
            return {**row, "status": "failed", "reason": "every batch size failed: " + row["latency"][0]["error"]}
        ok_b1 = any(s.get("batch_size") == 1 and "p50_ms" in s for s in row["latency"])
        with rep.bar(f"{label} accuracy", len(evalset), "clips") as bar:
            out = logits(runner, evalset.x, 1 if ok_b1 else min(batch_sizes), bar.advance)
        row["accuracy"] = _accuracy(out, evalset, reference)
        if e2e_clips > 0 and ok_b1:
            try:
                with rep.bar(f"{label} end-to-end", e2e_clips, "clips") as bar:
                    row["end_to_end"] = lat.end_to_end(runner, evalset.dataset, e2e_clips, spec.frames,
                                                       advance=bar.advance).to_dict()
            except Exception as e:  # noqa: BLE001 - a video that fails to decode should not lose the row
                row["end_to_end"] = {"error": _reason(e)}
    except Exception as e:  # noqa: BLE001
        return {**row, "status": "failed", "reason": f"run failed: {_reason(e)}"}
    finally:
        runner.close()
    return row


def _accuracy(out: np.ndarray, evalset: EvalSet, reference: np.ndarray | None) -> dict[str, Any]:
    m = classification(out, evalset.labels)
    return {"n": m["n"], "top1": m["top1"], "top5": m["top5"], "k": m["k"],
            "agreement": agreement(out, reference) if reference is not None else None}


# ----------------------------------------------------------------------------- the bench

def _reference(model, evalset: EvalSet, rep) -> np.ndarray | None:
    """PyTorch fp32 logits on the eval clips: what every artifact's agreement is measured against."""
    if model is None:
        return None
    with TorchRunner(model, "cpu", "fp32") as runner, \
            rep.bar("PyTorch fp32 reference", len(evalset), "clips") as bar:
        return logits(runner, evalset.x, 8, bar.advance)


def _fp16_accuracy_only(model, evalset: EvalSet, ref: np.ndarray | None, rep) -> dict[str, Any]:
    """fp16 arithmetic on the host CPU (torch .half()), for accuracy only, when no fp16 runtime ran here."""
    import torch

    net = copy.deepcopy(model).half().eval()
    out = []
    with rep.bar("fp16 accuracy (torch on CPU)", len(evalset), "clips") as bar, torch.inference_mode():
        for i in range(0, len(evalset), 8):
            out.append(net(torch.from_numpy(evalset.x[i:i + 8]).half()).float().numpy())
            bar.advance(len(out[-1]))
    return _accuracy(np.concatenate(out), evalset, ref)


@dataclasses.dataclass
class _Plan:
    """A BenchRequest resolved against its profile: what to time, how often, where to write."""

    prof: Profile
    batch_sizes: tuple[int, ...]
    iterations: int
    warmup: int
    e2e_clips: int


def _plan(req: BenchRequest, prof: Profile) -> _Plan:
    for key, values, allowed in (("runtimes", req.runtimes, prof.runtimes),
                                 ("precisions", req.precisions, prof.precisions)):
        for v in values or ():
            if v not in allowed:
                from edgekd.registry import did_you_mean

                raise ConfigError(f"{key}: {v!r} is not in profile {prof.name}'s {key} ({', '.join(allowed)})",
                                  did_you_mean(v, list(allowed)))
    plan = _Plan(prof, tuple(req.batch_sizes or prof.batch_sizes),
                 prof.iterations if req.iterations is None else req.iterations,
                 prof.warmup if req.warmup is None else req.warmup, 0)
    if plan.iterations < 1 or any(b < 1 for b in plan.batch_sizes) or plan.warmup < 0:
        raise ConfigError("iterations and batch sizes must be >= 1, warmup >= 0", "e.g. --iterations 50 --batch-sizes 1,4")
    plan.e2e_clips = min(plan.iterations, 20) if req.e2e_clips is None else req.e2e_clips
    return plan


def _model_and_cost(target, spec) -> tuple[Any, Any, str | None]:
    """(PyTorch fp32 model or None, its counted cost or None, why there is no cost)."""
    from edgekd.bench.roofline import count_cost

    if target.checkpoint is None:
        return None, None, "no checkpoint: the roofline counts FLOPs and bytes from the PyTorch model"
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint

    model, _ = build_student_from_checkpoint(load_checkpoint(target.checkpoint))
    model = model.float().cpu().eval()
    try:
        return model, count_cost(copy.deepcopy(model), spec.input_shape(1)), None
    except Exception as e:  # noqa: BLE001 - a model FlopCounterMode cannot trace still gets measured
        return model, None, f"counting FLOPs failed: {_reason(e)}"


def _floors(cost, prof: Profile) -> dict[str, Any]:
    """Speed-of-light floor per precision at batch 1."""
    from edgekd.bench.roofline import floor

    floors = {p: floor(cost, prof, p, 1) for p in prof.precisions}
    if prof.name == "host" and prof.kind == "cpu":
        # a clip whose weights and activations fit in the last-level cache never waits on DRAM:
        # its floor is the compute time (the DRAM floor would be beaten, efficiency > 100 %)
        from edgekd.runtime.host import last_level_cache_bytes

        llc = last_level_cache_bytes()
        for p, f in floors.items():
            if llc and cost.bytes(p) <= llc and f.bound == "memory":
                floors[p] = dataclasses.replace(f, floor_ms=f.compute_ms, bound="compute (fits in cache)")
    return floors


def _roofline(rows: list[dict[str, Any]], floors: dict[str, Any], prof: Profile, on_target: bool) -> None:
    """Each accelerated row's floor and, on the profile's hardware, its efficiency against it."""
    from edgekd.bench.roofline import efficiency

    for row in rows:
        f = floors.get(row["precision"])
        if f is None or row["runtime"] not in ACCELERATED[prof.kind]:
            row["roofline"] = None
            continue
        b1 = next((s for s in row["latency"] if s.get("batch_size") == 1 and "p50_ms" in s), None)
        row["roofline"] = {"floor_ms": f.floor_ms, "bound": f.bound,
                           "efficiency": efficiency(f.floor_ms, b1["p50_ms"]) if on_target and b1 else None}


def _estimates(rows, floors, cost, model, spec, plan: _Plan, evalset, reference, rep) -> list[dict[str, Any]]:
    """Off the profile's hardware: per-layer latency estimates with their band, per precision."""
    from edgekd.bench.predictor import predict_model

    prof, out = plan.prof, []
    for p in prof.precisions:
        src = next((r for r in rows if r["precision"] == p and r.get("accuracy")), None)
        pred = {b: predict_model(model, spec.input_shape(b), prof, p) for b in sorted({1, *plan.batch_sizes})}
        est = {**floors[p].to_dict(), "bytes": cost.bytes(p),
               "latency": [{"batch_size": b, **e.to_dict()} for b, e in pred.items()],
               "top1": src["accuracy"]["top1"] if src else None,
               "top1_from": f"{src['runtime']} {p} on this host" if src else None}
        if src is None and p == "fp16" and model is not None:
            a = _fp16_accuracy_only(model, evalset, reference, rep)
            est.update(top1=a["top1"], top1_from="torch fp16 on the host CPU (accuracy only)")
        est["workload"] = workload([{"batch_size": b, "p50_ms": e["p50_ms"]} for b, e in
                                    ((x["batch_size"], x) for x in est["latency"])], prof.to_dict())
        out.append(est)
    return out


def _model_block(target, spec) -> dict[str, Any]:
    return {"name": target.name, "student": target.student, "run_dir": str(target.run_dir) if target.run_dir else None,
            "export_dir": str(target.export_dir) if target.export_dir else None,
            "checkpoint": str(target.checkpoint) if target.checkpoint else None,
            "checkpoint_sha256": target.checkpoint_sha256, "spec": spec.to_dict(),
            "input_shape": list(spec.input_shape(1)),
            "artifacts": {**{f"onnx-{k}": v.name for k, v in target.onnx.items()},
                          **{f"engine-{k}": v.name for k, v in target.engines.items()}}}


def bench(export_dir_or_run: str | Path, profile: str | Path | Profile = "host", *, reporter=None,
          request: BenchRequest | None = None, **fields: Any) -> Path:
    """Benchmark a run/export on `profile`; returns the bench folder (report.json, report.md, pareto.png)."""
    from edgekd.report import Reporter

    req = request or BenchRequest(**fields)
    rep = reporter or Reporter.quiet()
    plan = _plan(req, load_profile(profile))
    prof = plan.prof
    target = resolve(export_dir_or_run)
    spec = target.spec
    for where, shape in target.declared_inputs:
        check_input_shape(shape, spec, where)
    env = collect()
    on_target = prof.name == "host" or matches(prof.match, device_names(env))
    host = env["jetson"]["model"] if env.get("jetson") else (env["gpu"] if prof.kind != "cpu" and env.get("gpu")
                                                             else f"{env['cpu']} ({env['machine']})")
    model, cost, cost_error = _model_and_cost(target, spec)
    data = req.eval_data if req.eval_data is not None else target.dataset
    evalset = build_evalset(data, spec, limit=req.eval_limit, fallback_split="train", reporter=rep)
    if evalset.note:
        rep.warn(evalset.note)
    reference = _reference(model, evalset, rep)

    out = Path(req.out_dir) if req.out_dir is not None else target.bench_dir
    rows = []
    for runtime in req.runtimes or prof.runtimes:
        for precision in req.precisions or prof.precisions:
            runner = make_runner(runtime, precision, model=model, onnx=target.onnx, engines=target.engines,
                                 threads=req.threads, workspace_mb=prof.workspace_mb or 1024,
                                 max_batch=max(prof.batch_sizes), cache_dir=out)
            row = bench_row(runner, batch_sizes=plan.batch_sizes, warmup=plan.warmup, iterations=plan.iterations,
                            evalset=evalset, reference=reference, spec=spec, e2e_clips=plan.e2e_clips, rep=rep)
            row["workload"] = workload(row.get("latency") or [], prof.to_dict())
            rows.append(row)

    # on the profile's hardware: floors and efficiency; elsewhere: per-layer estimates with a band
    estimates = []
    if cost is not None:
        floors = _floors(cost, prof)
        _roofline(rows, floors, prof, on_target)
        if not on_target:
            estimates = _estimates(rows, floors, cost, model, spec, plan, evalset, reference, rep)

    stream_path = target.export_dir / STREAM_FILE if target.export_dir is not None else None
    streaming = None
    if stream_path is not None and stream_path.is_file() and req.streaming:
        from edgekd.bench.streaming import bench_streaming

        streaming = bench_streaming(stream_path, spec=spec, evalset=evalset, data=data, eval_limit=req.eval_limit,
                                    reference=reference, model=model, prof=prof, on_target=on_target,
                                    warmup=plan.warmup, iterations=plan.iterations, threads=req.threads,
                                    clip_rows=rows, rep=rep)

    report: dict[str, Any] = {
        "edgekd_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "profile": prof.to_dict(),
        "target": {"on_target": on_target, "host": host, "host_devices": device_names(env),
                   "latency_kind": "measured" if on_target else "estimate"},
        "environment": env,
        "model": _model_block(target, spec),
        "settings": {"batch_sizes": list(plan.batch_sizes), "warmup": plan.warmup, "iterations": plan.iterations,
                     "e2e_clips": plan.e2e_clips, "threads": req.threads},
        "eval": evalset.describe(),
        "cost": cost.to_dict() if cost else None,
        "cost_error": cost_error,
        "rows": rows,
        "estimates": estimates,
        "streaming": streaming,
    }
    report["verdict"] = verdict(points(report), prof.to_dict())
    write_report(report, out)
    return out


def bench_many(targets: list[str | Path], profile: str | Path | Profile = "host", *, reporter=None,
               merged_dir: str | Path | None = None, **fields: Any) -> tuple[list[Path], Path | None, dict[str, Any] | None]:
    """Bench several runs on one profile and merge them into one Pareto plot (when more than one)."""
    from edgekd.bench.report import load_report, merge

    if fields.get("out_dir") is not None and len(targets) > 1:
        raise BenchError("--out names one bench folder; with several runs each writes runs/NAME/bench",
                         "drop --out, or use --merged-out for the combined Pareto plot")
    prof = load_profile(profile)  # measured once for "host", shared by every run
    dirs = [bench(t, prof, reporter=reporter, **fields) for t in targets]
    if len(dirs) < 2:
        return dirs, None, None
    merged = Path(merged_dir) if merged_dir else dirs[0].parent.parent / "bench-compare"
    out, _, v = merge([load_report(d) for d in dirs], merged)
    return dirs, out, v
