"""Reports: report.json (everything, plus the environment), report.md, pareto.png, a rich table.

Every renderer works from the report dict (what report.json holds), so reports of several runs can
be merged later into one Pareto plot without re-running anything.

Latency on the profile's hardware is either MEASURED (bench ran on that device) or an ESTIMATE
(per-layer roofline + launch overhead, with its error band, when bench ran elsewhere); every output
says which. The verdict judges the profile's workload (cameras x fps, one prediction every stride
frames): among artifacts that keep up, the fastest (p50) whose top-1 is within one standard error
of the best one's (the one-standard-error rule: a few clips more or less correct is noise, and a
user should not ship a slower engine for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekd.errors import BenchError
from edgekd.io import read_json, write_json, write_text_atomic

MARKERS = {"fp32": "o", "fp16": "s", "int8": "^"}


# ----------------------------------------------------------------------------- points & verdict

def workload(latency: list[dict[str, Any]], profile: dict[str, Any]) -> dict[str, Any]:
    """Real-time streams one device sustains at the profile's workload, from per-batch p50 latencies.

    A stream needs fps / stride_frames clips per second; the device serves, at its best batch size,
    b * 1000 / p50_b clips per second; it keeps up when that covers every camera of the workload.
    """
    ok = [s for s in latency if s.get("p50_ms")]
    need = profile["fps"] / profile["stride_frames"]
    if not ok:
        return {"streams": None, "keeps_up": None, "cameras": profile["cameras"], "clips_per_s": None,
                "stream_clips_per_s": need}
    best = max(ok, key=lambda s: s["batch_size"] * 1e3 / s["p50_ms"])
    rate = best["batch_size"] * 1e3 / best["p50_ms"]
    streams = int(rate // need)
    return {"streams": streams, "keeps_up": streams >= profile["cameras"], "cameras": profile["cameras"],
            "clips_per_s": rate, "at_batch": best["batch_size"], "stream_clips_per_s": need}


@dataclass
class Point:
    group: str           # the run (student) the point belongs to
    label: str           # runtime/precision
    precision: str
    latency_ms: float    # batch-1 p50: measured, or the estimate on the profile's hardware
    top1: float          # 0..1
    kind: str            # "measured" | "estimate"
    streams: int | None = None      # real-time streams of the profile's workload one device sustains
    keeps_up: bool | None = None    # streams >= the workload's cameras
    clips: int | None = None        # test clips behind top1

    def standard_error(self) -> float:
        """Binomial standard error of top1 over `clips` test clips (0 when unknown)."""
        return (self.top1 * (1 - self.top1) / self.clips) ** 0.5 if self.clips else 0.0


def points(report: dict[str, Any]) -> list[Point]:
    """The Pareto points of one report: measured rows on target, per-precision estimates elsewhere."""
    group = report["model"]["name"]
    clips = next((r["accuracy"].get("n") for r in report["rows"] if r.get("accuracy")), None)
    out: list[Point] = []
    if report["target"]["on_target"]:
        for row in report["rows"]:
            b1, acc, w = _b1(row), row.get("accuracy"), row.get("workload") or {}
            if row["status"] == "ok" and b1 is not None and acc and acc.get("top1") is not None:
                out.append(Point(group, f"{row['runtime']} {row['precision']}", row["precision"], b1["p50_ms"],
                                 acc["top1"], "measured", w.get("streams"), w.get("keeps_up"), clips))
    else:
        for est in report["estimates"]:
            b1 = _b1(est)
            if est.get("top1") is not None and b1 is not None:
                w = est.get("workload") or {}
                out.append(Point(group, f"{est['precision']} (estimate)", est["precision"], b1["p50_ms"],
                                 est["top1"], "estimate", w.get("streams"), w.get("keeps_up"), clips))
    return out


def _b1(row: dict[str, Any]) -> dict[str, Any] | None:
    """The batch-1 latency entry of a row (or its smallest measured batch)."""
    ok = [s for s in row.get("latency", []) if "p50_ms" in s]
    return min(ok, key=lambda s: s["batch_size"]) if ok else None


def workload_text(profile: dict[str, Any]) -> str:
    return (f"{profile['cameras']} camera(s) x {profile['fps']:g} fps, a {profile['clip_frames']}-frame clip every "
            f"{profile['stride_frames']} frames")


def verdict(pts: list[Point], profile: dict[str, Any]) -> dict[str, Any]:
    """Among artifacts that keep up with the workload, the fastest whose top-1 is within one standard
    error of the best top-1 (ties in top-1 go to the lower p50 too)."""
    device, work = profile["device"], workload_text(profile)
    if not pts:
        return {"text": f"no artifact has both a latency on {device} and an accuracy; nothing to judge",
                "best": None, "kind": None}
    fit = [p for p in pts if p.keeps_up]
    if not fit:
        most = max(pts, key=lambda p: (p.streams or 0, -p.latency_ms))
        kind = "estimated " if most.kind == "estimate" else ""
        return {"text": f"none keeps up with {work} on {device}; the most is {most.group} {most.label} with "
                        f"{kind}{most.streams} stream(s) (p50 {most.latency_ms:.2f} ms)", "best": None,
                "kind": most.kind}
    top = max(fit, key=lambda p: (round(p.top1, 9), -p.latency_ms))
    margin = top.standard_error()
    best = min((p for p in fit if top.top1 - p.top1 <= margin + 1e-9), key=lambda p: p.latency_ms)
    how = "estimated" if best.kind == "estimate" else "measured"
    if best is top:
        why = f"best top-1 {100 * best.top1:.1f}%"
    else:
        why = (f"top-1 {100 * best.top1:.1f}%, within one standard error ({100 * margin:.1f} points over "
               f"{top.clips} clips) of the best, {top.label} {100 * top.top1:.1f}%, and the fastest of those")
    text = (f"{best.group} {best.label}: {why} among artifacts that keep up with {work} on {device}; "
            f"{how} p50 {best.latency_ms:.2f} ms at batch 1, {best.streams} real-time stream(s) per device")
    if best.kind == "estimate":
        text += " (an estimate, not a measurement: bench on the device to confirm)"
    return {"text": text, "best": best.__dict__, "kind": best.kind}


# ----------------------------------------------------------------------------- pareto.png

def pareto_front(pts: list[Point]) -> list[Point]:
    """Points no other point beats on both latency (lower) and top-1 (higher), by latency."""
    front, best = [], -1.0
    for p in sorted(pts, key=lambda p: (p.latency_ms, -p.top1)):
        if p.top1 > best:
            front.append(p)
            best = p.top1
    return front


def plot_pareto(pts: list[Point], path: str | Path, *, budgets: dict[str, float], title: str) -> list[Point]:
    """Accuracy against latency, one marker per point, budget line(s) drawn; returns the points plotted.

    Filled markers are measurements on the profile's hardware; hollow markers are estimates.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=100)
    groups = sorted({p.group for p in pts})
    colors = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(groups)}
    plotted: list[Point] = []
    for p in pts:
        c = colors[p.group]
        face = c if p.kind == "measured" else "none"
        ax.scatter([p.latency_ms], [100 * p.top1], marker=MARKERS.get(p.precision, "o"), s=70,
                   facecolors=[face], edgecolors=[c], linewidths=1.6, zorder=3)
        ax.annotate(p.label if len(groups) == 1 else f"{p.group}: {p.label}", (p.latency_ms, 100 * p.top1),
                    textcoords="offset points", xytext=(6, 4), fontsize=7)
        plotted.append(p)
    front = pareto_front(pts)
    if len(front) > 1:
        ax.plot([p.latency_ms for p in front], [100 * p.top1 for p in front], "--", color="0.5", lw=1,
                zorder=2, label="Pareto front")
    for name, budget in budgets.items():
        ax.axvline(budget, color="crimson", lw=1.5, label=f"budget {budget:.1f} ms ({name})")
    lat = [p.latency_ms for p in pts] + list(budgets.values())
    if lat and min(lat) > 0 and max(lat) / min(lat) > 30:
        ax.set_xscale("log")
    for g in groups:
        ax.scatter([], [], color=colors[g], label=g)
    for prec, m in MARKERS.items():
        if any(p.precision == prec for p in pts):
            ax.scatter([], [], marker=m, facecolors="none", edgecolors="k", label=prec)
    if any(p.kind == "estimate" for p in pts):
        ax.scatter([], [], marker="o", facecolors="none", edgecolors="0.3", label="hollow = ESTIMATE (roofline)")
    if not pts:
        ax.text(0.5, 0.5, "no artifact with both latency and accuracy", ha="center", transform=ax.transAxes)
    ax.set_xlabel("latency per clip, batch 1 (ms; p50 measured, or per-layer estimate)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return plotted


# ----------------------------------------------------------------------------- text renderers

def _f(v: Any, fmt: str = "{:.2f}", none: str = "-") -> str:
    return none if v is None else fmt.format(v)


def _pct(v: Any) -> str:
    return _f(None if v is None else 100 * v, "{:.1f}")


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """One list of cells per row: the same content for the screen table and report.md."""
    on_target = report["target"]["on_target"]
    cells = []
    for row in report["rows"]:
        b1, acc = _b1(row), row.get("accuracy") or {}
        best = max((s for s in row.get("latency", []) if "clips_per_s" in s), key=lambda s: s["clips_per_s"],
                   default=None)
        e2e = (row.get("end_to_end") or {}).get("total", {})
        roof = row.get("roofline") or {}
        w = row.get("workload") or {}
        status = row["status"]
        if status == "ok" and on_target and w.get("keeps_up") is False:
            status = "falls behind"
        cells.append([
            row["runtime"], row["precision"], status,
            _f(b1 and b1["p50_ms"]), _f(b1 and b1["p99_ms"]),
            _f(best and best["clips_per_s"], "{:.1f}") + (f" (b{best['batch_size']})" if best else ""),
            _f(e2e.get("p50_ms")),
            _f(w.get("streams"), "{:d}") if on_target else "-",
            _pct(acc.get("top1")), _pct(acc.get("top5")), _pct(acc.get("agreement")),
            _f(roof.get("floor_ms"), "{:.3f}"), _pct(roof.get("efficiency")),
            _f(row.get("peak_memory_mb"), "{:.0f}"),
            ", ".join(row.get("providers") or []) if row["status"] == "ok" else (row.get("reason") or ""),
        ])
    return cells


HEADERS = ["runtime", "precision", "status", "p50 ms", "p99 ms", "clips/s", "e2e p50 ms", "streams", "top-1 %", "top-5 %",
           "agree %", "floor ms", "eff %", "mem MB", "providers / reason"]


def target_line(report: dict[str, Any]) -> str:
    t, p = report["target"], report["profile"]
    if t["on_target"]:
        return f"MEASURED on the profile's hardware ({t['host']})."
    return (f"Bench ran on {t['host']}, not on {p['device']}: latencies in the table are measurements of this "
            f"host; latencies on {p['device']} are ESTIMATES (per-layer roofline + launch overhead, with a band), "
            "never measurements.")


def render_markdown(report: dict[str, Any]) -> str:
    p, m, env = report["profile"], report["model"], report["environment"]
    lines = [f"# edgekd bench: {m['name']} on {p['name']}", "",
             f"**Verdict:** {report['verdict']['text']}", "",
             f"- Profile: {p['device']} (`{p['source']}`); workload {workload_text(p)}: "
             f"{p['budget_ms']:.1f} ms per clip at batch 1",
             f"- {target_line(report)}",
             f"- Model: {m.get('student')} from `{m.get('checkpoint') or 'no checkpoint'}`; input {m.get('input_shape')}",
             f"- Eval: {report['eval'].get('clips', 0)} clips of {report['eval'].get('source')} "
             f"({report['eval'].get('split')}){' - ' + report['eval']['note'] if report['eval'].get('note') else ''}",
             f"- Host: {env.get('cpu')} ({env.get('cpu_count')} CPUs), GPU {env.get('gpu') or 'none'}; "
             + ", ".join(f"{k} {v}" for k, v in env.get("libraries", {}).items()), ""]
    if env.get("jetson"):
        j = env["jetson"]
        lines += [f"- Jetson: {j.get('model')}; {j.get('nv_tegra_release')}; nvpmodel: "
                  f"{(j.get('nvpmodel') or 'n/a').splitlines()[0]}", ""]
    lines += ["## Runtimes", "", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in table_rows(report)]
    lines += ["", "Latency: engine only, batch 1 (p50/p99); clips/s at the best batch size; e2e = decode + "
              "preprocess + engine per clip. streams = real-time streams of the workload one device sustains "
              "(best measured clips/s / (fps / stride)); mem = peak memory growth of the row (RSS on CPU, max "
              "allocated on CUDA). agree = top-1 agreement with PyTorch fp32. floor = speed-of-light latency on "
              "the profile's hardware; eff = floor / measured p50 (only on the profile's hardware).", ""]
    cost = report.get("cost")
    if cost:
        lines += ["## Roofline", "",
                  f"{cost['flops'] / 1e9:.3f} GFLOPs per clip, {cost['params'] / 1e6:.3f} M parameters, "
                  f"{cost['activation_elements'] / 1e6:.2f} M activation elements moved per clip (counted from "
                  "the model: FlopCounterMode + forward hooks).", "",
                  "| precision | bytes/clip (MB) | FLOP/byte | ridge | bound | floor ms (batch 1) | top-1 % | kind |",
                  "|---|---|---|---|---|---|---|---|"]
        for e in report["estimates"]:
            lines.append(f"| {e['precision']} | {e['bytes'] / 1e6:.2f} | {e['intensity']:.1f} | {e['ridge']:.1f} | "
                         f"{e['bound']} | {e['floor_ms']:.4f} | {_pct(e.get('top1'))} | ESTIMATE |")
        lines.append("")
    if report["estimates"]:
        lines += [f"## ESTIMATED latency on {p['device']}", "",
                  "Per-layer roofline (each layer's max(FLOPs / peak, bytes / bandwidth)) plus the profile's "
                  "per-kernel overhead; the band is the estimate's measured error (docs/bench.md).", "",
                  "| precision | batch | estimate ms | band ms | streams | keeps up | top-1 % |", "|---|---|---|---|---|---|---|"]
        for e in report["estimates"]:
            for s in e.get("latency", []):
                lines.append(f"| {e['precision']} | {s['batch_size']} | {s['p50_ms']:.3f} | {s['low_ms']:.3f}-"
                             f"{s['high_ms']:.3f} | {(e.get('workload') or {}).get('streams', '-')} | "
                             f"{(e.get('workload') or {}).get('keeps_up', '-')} | {_pct(e.get('top1'))} |")
        lines.append("")
    elif report.get("cost_error"):
        lines += ["## Roofline", "", f"Not computed: {report['cost_error']}", ""]
    from edgekd.bench.streaming import markdown

    lines += markdown(report.get("streaming"))
    lines += ["## Pareto", "", "![pareto](pareto.png)", ""]
    return "\n".join(lines)


SCREEN = {"runtime": 0, "prec": 1, "state": 2, "p50": 3, "p99": 4, "clip/s": 5, "e2e": 6, "streams": 7, "top1": 8,
          "agree": 10, "eff%": 12, "memMB": 13}  # screen column -> index in table_rows' cells (report.md has all)


def print_table(report: dict[str, Any], out) -> None:
    """The rows as a compact rich table (ms, %) on `out` (a rich Console); reasons and providers beneath it."""
    from rich import box
    from rich.table import Table

    p = report["profile"]
    table = Table(title=f"{report['model']['name']} on {p['name']}: latency ms (batch 1), accuracy %, "
                        f"workload {workload_text(p)}", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1),
                  collapse_padding=True)
    for h in SCREEN:
        table.add_column(h, justify="left" if h in ("runtime", "prec", "state") else "right", no_wrap=True,
                         min_width=max(len(h), 4))
    notes = []
    short = {"unavailable": "n/a", "falls behind": "behind"}
    for cells in table_rows(report):
        style = {"ok": None, "falls behind": "yellow", "unavailable": "dim", "failed": "red"}.get(cells[2])
        row = [cells[i] for i in SCREEN.values()]
        row[2] = short.get(row[2], row[2])
        row[5] = row[5].split(".")[0]  # whole clips/s on screen
        table.add_row(*row, style=style)
        notes.append(f"  {cells[0]} {cells[1]}: {'[dim]' if cells[2] == 'unavailable' else ''}{cells[-1]}")
    out.print(table)
    out.print("\n".join(notes), highlight=False)
    out.print(f"[italic]{target_line(report)}[/italic]", highlight=False)
    if report["estimates"] and not report["target"]["on_target"]:
        est = Table(title=f"ESTIMATED latency on {p['device']} (per-layer roofline + launch overhead, not measured)")
        for h in ("precision", "batch", "estimate ms", "band ms", "streams", "top-1 %", "accuracy from"):
            est.add_column(h)
        for e in report["estimates"]:
            for s in e.get("latency", []):
                est.add_row(e["precision"], str(s["batch_size"]), f"{s['p50_ms']:.3f}",
                            f"{s['low_ms']:.3f}-{s['high_ms']:.3f}", str((e.get("workload") or {}).get("streams", "-")),
                            _pct(e.get("top1")), e.get("top1_from") or "-")
        out.print(est)
    from edgekd.bench.streaming import summary_line

    line = summary_line(report.get("streaming"))
    if line:
        out.print(line, highlight=False, markup=False)
    out.print(f"[bold]verdict:[/bold] {report['verdict']['text']}", highlight=False)


# ----------------------------------------------------------------------------- writing & merging

def write_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """report.json, report.md and pareto.png into out_dir; returns out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pts = points(report)
    p = report["profile"]
    suffix = "" if report["target"]["on_target"] else " - ESTIMATES (not measured)"
    plotted = plot_pareto(pts, out_dir / "pareto.png", budgets={p["name"]: p["budget_ms"]},
                          title=f"{report['model']['name']} on {p['device']}{suffix}")
    report["pareto_points"] = [pt.__dict__ for pt in plotted]
    write_json(out_dir / "report.json", report)
    write_text_atomic(out_dir / "report.md", render_markdown(report))
    return out_dir


def load_report(path: str | Path) -> dict[str, Any]:
    """A report.json, or a bench folder / run folder holding one."""
    path = Path(path)
    for cand in (path, path / "report.json", path / "bench" / "report.json"):
        if cand.is_file():
            return read_json(cand, BenchError, "re-run `edgekd bench` to rewrite it")
    raise BenchError(f"no report.json at {path}", "run `edgekd bench` on it first")


def merge(reports: list[dict[str, Any]], out_dir: str | Path) -> tuple[Path, list[Point], dict[str, Any]]:
    """One Pareto plot (and summary) over several bench reports: students x runtimes x precisions."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pts = [pt for r in reports for pt in points(r)]
    budgets = {r["profile"]["name"]: r["profile"]["budget_ms"] for r in reports}
    devices = sorted({r["profile"]["device"] for r in reports})
    estimated = any(not r["target"]["on_target"] for r in reports)
    title = f"{len(reports)} runs on {', '.join(devices)}" + (" - hollow = ESTIMATES" if estimated else "")
    plotted = plot_pareto(pts, out_dir / "pareto.png", budgets=budgets, title=title)
    v = verdict(pts, {**reports[0]["profile"], "device": " / ".join(devices)})
    summary = {"runs": [{"name": r["model"]["name"], "profile": r["profile"]["name"],
                         "on_target": r["target"]["on_target"], "verdict": r["verdict"]["text"]} for r in reports],
               "verdict": v, "pareto_points": [p.__dict__ for p in plotted]}
    write_json(out_dir / "report.json", summary)
    md = [f"# edgekd bench: {len(reports)} runs", "", f"**Verdict:** {v['text']}", "",
          "| run | runtime/precision | latency ms | top-1 % | kind |", "|---|---|---|---|---|"]
    md += [f"| {p.group} | {p.label} | {p.latency_ms:.3f} | {100 * p.top1:.1f} | {p.kind} |" for p in plotted]
    md += ["", "![pareto](pareto.png)", ""]
    write_text_atomic(out_dir / "report.md", "\n".join(md))
    return out_dir, plotted, v
