"""What streaming buys: the streaming artifact measured next to the clip model, in report.json["streaming"].

    latency     one frame at batch 1 (ONNX Runtime CPU, state carried): p50/p99 on this host;
                on another profile's hardware a per-layer ESTIMATE of one frame (edgekd.bench.predictor)
    accuracy    clip protocol: zero state, T frames, mean of per-frame logits (= the clip model)
                sliding: an unbroken stream over 2T frames; at every frame from the T-th on, the
                mean of the last T per-frame logits (what a live camera shows), and at the last frame
    workload    a camera feeds the student fps / frame_stride frames per second (the rate it was
                trained at), so one device sustains floor(1000 / p50_frame / that) streams; a clip
                model needs fps / stride_frames clips per second and answers that often

The clip side of the comparison is the bench row of the same runtime and precision (ort-cpu fp32).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from edgekd.runtime.artifact import FILES


def _frame_module(model):
    """The student's cost for one frame as a plain module (zero state: the same work as any frame)."""
    import torch

    class OneFrame(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.student = model

        def forward(self, frame):
            return self.student.forward_frame(frame)[0]

    return OneFrame().eval()


def time_frames(runner, frame: np.ndarray, warmup: int, iterations: int, advance=None) -> list[float]:
    """Seconds per `runner.step(frame)` call, the state carried from call to call like a live stream."""
    import time

    runner.reset(len(frame))
    for _ in range(warmup):
        runner.step(frame)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        runner.step(frame)
        times.append(time.perf_counter() - t0)
        if advance is not None:
            advance(1)
    return times


def stream_workload(p50_ms: float | None, spec, profile: dict[str, Any]) -> dict[str, Any]:
    need = profile["fps"] / spec.frame_stride        # frames per second one camera feeds the student
    if not p50_ms:
        return {"streams": None, "keeps_up": None, "frames_per_s": None, "stream_frames_per_s": need}
    rate = 1e3 / p50_ms
    streams = int(rate // need)
    return {"streams": streams, "keeps_up": streams >= profile["cameras"], "cameras": profile["cameras"],
            "frames_per_s": rate, "stream_frames_per_s": need, "answers_per_s_per_stream": need}


def bench_streaming(stream_path, *, spec, evalset, data, eval_limit, reference, model, prof, on_target: bool,
                    warmup: int, iterations: int, threads: int | None, clip_rows: list[dict[str, Any]],
                    rep) -> dict[str, Any]:
    """The "streaming" section of report.json (see the module docstring); failures become a reason."""
    from edgekd.bench.latency import summarize
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.metrics import agreement, classification
    from edgekd.runtime.runners import RunnerUnavailable, logits
    from edgekd.runtime.stream import StreamRunner, sliding_logits

    section: dict[str, Any] = {"file": stream_path.name, "runtime": "ort-cpu", "precision": "fp32", "status": "ok"}
    runner = StreamRunner(stream_path, "cpu", "fp32", threads=threads)
    try:
        runner.load()
    except RunnerUnavailable as e:
        return {**section, "status": "unavailable", "reason": e.message}
    try:
        with rep.bar("streaming: one frame at a time", iterations, "frames") as bar:
            times = time_frames(runner, evalset.x[:1, :, 0], warmup, iterations, bar.advance)
        section["frame_latency"] = summarize(times, 1, 1).to_dict()
        with rep.bar("streaming: clip protocol", len(evalset), "clips") as bar:
            clip_out = logits(runner, evalset.x, 1, bar.advance)
        m = classification(clip_out, evalset.labels)
        section["accuracy_clip_protocol"] = {"n": m["n"], "top1": m["top1"], "top5": m["top5"],
                                             "agreement_with_clip_model": agreement(clip_out, reference)
                                             if reference is not None else None}
        # an unbroken stream of 2T frames per video: state warmed by the frames before each window
        long = build_evalset(data, dataclasses.replace(spec, frames=2 * spec.frames), limit=eval_limit,
                             fallback_split="train", reporter=rep)
        with rep.bar("streaming: sliding window", len(long), "videos") as bar:
            per_frame = []
            for i in range(len(long)):
                per_frame.append(runner.frame_logits(long.x[i:i + 1])[0])
                bar.advance(1)
        windows = sliding_logits(np.stack(per_frame), spec.frames)        # (N, T + 1, C)
        every = classification(windows.reshape(-1, windows.shape[-1]), np.repeat(long.labels, windows.shape[1]))
        last = classification(windows[:, -1], long.labels)
        section["accuracy_sliding"] = {"n": last["n"], "frames": 2 * spec.frames, "window": spec.frames,
                                       "top1_last_frame": last["top1"], "top1_every_frame": every["top1"],
                                       "eval": long.describe()}
    except Exception as e:  # noqa: BLE001 - a failing streaming run is a reason in the report, not a crash
        return {**section, "status": "failed", "reason": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
    finally:
        runner.close()
    p50 = section["frame_latency"]["p50_ms"]
    section["workload"] = stream_workload(p50, spec, prof.to_dict())
    section["latency_kind"] = "measured" if on_target else "measured on this host (not the profile's device)"
    if not on_target and model is not None:
        from edgekd.bench.predictor import predict_model

        est = predict_model(_frame_module(model), (1, 3, spec.size, spec.size), prof, "fp32")
        section["estimate"] = {**est.to_dict(), "workload": stream_workload(est.p50_ms, spec, prof.to_dict())}
    clip = next((r for r in clip_rows if r["runtime"] == "ort-cpu" and r["precision"] == "fp32"
                 and r.get("status") == "ok"), None)
    if clip is not None:
        b1 = next((s for s in clip["latency"] if s.get("batch_size") == 1 and "p50_ms" in s), None)
        section["clip_model"] = {"runtime": "ort-cpu", "precision": "fp32",
                                 "p50_ms": b1["p50_ms"] if b1 else None,
                                 "top1": (clip.get("accuracy") or {}).get("top1"),
                                 "workload": clip.get("workload")}
        if b1:
            per_stride = b1["p50_ms"] / prof.stride_frames
            section["frame_vs_clip_per_stride"] = p50 / per_stride
    return section


def _f(v, spec: str = ".2f", scale: float = 1.0) -> str:
    return "-" if v is None else format(v * scale, spec)


def summary_line(s: dict[str, Any] | None) -> str | None:
    """One line for the screen: per-frame latency, accuracy and streams next to the clip model's."""
    if not s:
        return None
    if s["status"] != "ok":
        return f"streaming ({s['file']}): {s['status']} - {s.get('reason')}"
    lat, w, c = s["frame_latency"], s["workload"], s.get("clip_model") or {}
    line = (f"streaming ({s['file']}, {s['runtime']} {s['precision']}): {lat['p50_ms']:.2f} ms per frame "
            f"(p99 {lat['p99_ms']:.2f}), {w['streams']} stream(s) answered every frame; top-1 "
            f"{_f(s['accuracy_clip_protocol']['top1'], '.1f', 100)}% clip protocol, "
            f"{_f(s['accuracy_sliding']['top1_every_frame'], '.1f', 100)}% sliding window")
    if c.get("p50_ms") is not None:
        line += (f" | clip model {c['p50_ms']:.2f} ms per clip, {(c.get('workload') or {}).get('streams', '-')} "
                 f"stream(s), top-1 {_f(c.get('top1'), '.1f', 100)}%; frame / (clip / stride) = "
                 f"{_f(s.get('frame_vs_clip_per_stride'))}")
    return line


def markdown(s: dict[str, Any] | None) -> list[str]:
    """The report.md section."""
    if not s:
        return []
    lines = ["## Streaming", ""]
    if s["status"] != "ok":
        return lines + [f"`{s['file']}`: {s['status']} - {s.get('reason')}", ""]
    lat, w, c = s["frame_latency"], s["workload"], s.get("clip_model") or {}
    acc, sl = s["accuracy_clip_protocol"], s["accuracy_sliding"]
    lines += ["| model | latency p50 / p99 ms | unit | answers / s / stream | streams | top-1 % (clip) | "
              "top-1 % (sliding, every frame / last) |", "|---|---|---|---|---|---|---|",
              f"| {s['file']} ({s['runtime']} {s['precision']}) | {lat['p50_ms']:.3f} / {lat['p99_ms']:.3f} | frame | "
              f"{w['stream_frames_per_s']:g} | {w['streams']} | {_f(acc['top1'], '.1f', 100)} | "
              f"{_f(sl['top1_every_frame'], '.1f', 100)} / {_f(sl['top1_last_frame'], '.1f', 100)} |"]
    if c:
        cw = c.get("workload") or {}
        lines.append(f"| {FILES['onnx']} ({c['runtime']} {c['precision']}) | {_f(c.get('p50_ms'), '.3f')} | clip | "
                     f"{_f(cw.get('stream_clips_per_s'), 'g')} | {cw.get('streams', '-')} | "
                     f"{_f(c.get('top1'), '.1f', 100)} | - |")
    lines += ["", f"Latency {s['latency_kind']}. Clip protocol: zero state, the clip's frames one by one, mean of "
              f"the per-frame logits (the clip model's function). Sliding: one unbroken stream of "
              f"{sl['frames']} frames per video, the mean of the last {sl['window']} per-frame logits at every "
              f"frame from the {sl['window']}-th. frame / (clip / stride) = "
              f"{_f(s.get('frame_vs_clip_per_stride'))}."]
    if s.get("estimate"):
        e = s["estimate"]
        lines.append(f"ESTIMATED on the profile's device: {e['p50_ms']:.3f} ms per frame "
                     f"(band {e['low_ms']:.3f}-{e['high_ms']:.3f}), {e['workload']['streams']} stream(s).")
    return lines + [""]
