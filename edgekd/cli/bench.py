"""`edgekd bench`, `edgekd profiles`.

    edgekd profiles                                   the shipped hardware profiles
    edgekd profiles host                              this machine: cores, ISA, GPU, measured peaks
    edgekd bench runs/NAME                            measure on this machine (profile "host")
    edgekd bench runs/A runs/B -p orin-nano-8gb-15w   two students, one merged Pareto plot
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgekd.cli import console


def _words(text: Optional[str]) -> list[str] | None:
    return [w.strip() for w in text.split(",") if w.strip()] if text else None


def profiles_table():
    from rich.table import Table

    from edgekd.runtime.profiles import load_all

    t = Table(title="hardware profiles: dense peak TFLOPS/TOPS (`edgekd profiles NAME` shows sources)")
    t.add_column("name / device", min_width=20)
    for col in ("peak fp32/fp16/int8", "GB/s", "GB", "TRT/JetPack", "DLA", "workload", "ms/clip"):
        t.add_column(col, justify="right")
    for p in load_all():
        peak = p.peak_tflops
        t.add_row(f"[bold]{p.name}[/bold]\n[dim]{p.device}[/dim]", f"{peak['fp32']:g}/{peak['fp16']:g}/{peak['int8']:g}",
                  f"{p.bandwidth_gbs:g}", f"{p.memory_gb:g}", f"{p.tensorrt_version or '-'} / {p.jetpack or '-'}",
                  str(p.dla_cores), f"{p.cameras} x {p.fps:g} fps / {p.stride_frames}", f"{p.budget_ms:.0f}")
    return t


def host_table():
    """`edgekd profiles host`: what this machine is and what the micro-benchmarks measured."""
    from rich.table import Table

    from edgekd.runtime.host import collect, host_peaks, host_profile

    env = collect()
    p, peaks = host_profile(env), host_peaks()
    t = Table(title="host: this machine (peaks measured now by micro-benchmarks)", show_header=False)
    t.add_column("key")
    t.add_column("value")
    t.add_row("CPU", f"{env['cpu']} ({env['machine']})")
    t.add_row("cores", str(env["cpu_count"]))
    t.add_row("ISA", ", ".join(env["isa"]) or "none of AVX2/AVX-512/VNNI/AMX/NEON")
    t.add_row("GPU", "none" if p.kind == "cpu" else f"{p.device}, {p.memory_gb:.1f} GiB")
    for prec, v in peaks.flops.items():
        note = peaks.notes.get(prec)
        t.add_row(f"peak {prec}", f"{v / 1e9:.1f} G{'OP' if prec == 'int8' else 'FLOP'}/s" + (f" ({note})" if note else ""))
    t.add_row("bandwidth", f"{peaks.bandwidth / 1e9:.1f} GB/s (array copy, read + write)")
    t.add_row("per-kernel overhead", f"{peaks.launch_us:.2f} us ({'CUDA launch' if p.kind == 'gpu' else 'ONNX Runtime operator'})")
    t.add_row("memory", f"{p.memory_gb:.1f} GiB")
    return t


def register(app: typer.Typer) -> None:
    @app.command("profiles")
    def profiles(name: Optional[str] = typer.Argument(None, help="Show this profile's TOML (with its sources); "
                                                                 "'host' measures this machine.")) -> None:
        """List the shipped hardware profiles: peak rates (dense), bandwidth, TensorRT/JetPack, workload."""
        if name is None:
            console.out.print(profiles_table())
            return
        if name == "host":
            console.out.print(host_table())
            return
        from rich.syntax import Syntax

        from edgekd.runtime.profiles import load_profile, profile_text

        p = load_profile(name)
        console.out.print(Syntax(profile_text(name), "toml", word_wrap=True))
        console.out.print(f"workload: {p.cameras} camera(s) x {p.fps:g} fps, a clip every {p.stride_frames} frames "
                          f"= {p.budget_ms:.1f} ms per clip at batch 1; runtimes: {', '.join(p.runtimes)}; "
                          f"precisions: {', '.join(p.precisions)}", highlight=False)

    @app.command("bench")
    def bench(
        targets: List[Path] = typer.Argument(..., metavar="RUN...",
                                             help="Run folders (runs/NAME) or export folders; several = one merged Pareto plot."),
        profile: str = typer.Option("host", "--profile", "-p",
                                    help="'host' (this machine, measured), a profile name (edgekd profiles) or a TOML file."),
        batch_sizes: Optional[str] = typer.Option(None, "--batch-sizes", "-b", help="e.g. 1,4,8 (default: the profile's)."),
        iterations: Optional[int] = typer.Option(None, "--iterations", "-n", help="Timed calls per batch size."),
        warmup: Optional[int] = typer.Option(None, "--warmup", help="Untimed calls first."),
        eval_data: Optional[Path] = typer.Option(None, "--eval-data", help="Dataset for accuracy (default: the run's)."),
        eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="At most this many eval clips."),
        e2e_clips: Optional[int] = typer.Option(None, "--e2e-clips", help="Clips timed end to end (decode + infer)."),
        runtimes: Optional[str] = typer.Option(None, "--runtimes", help="Subset of the profile's runtimes, e.g. ort-cpu."),
        precisions: Optional[str] = typer.Option(None, "--precisions", help="Subset of the profile's precisions."),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for CPU runtimes (default: all)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Bench folder (default: RUN/bench)."),
        merged_out: Optional[Path] = typer.Option(None, "--merged-out", help="Folder for the merged report of several runs."),
    ) -> None:
        """Latency, accuracy and roofline of exported students on a hardware profile."""
        from edgekd.bench.api import bench_many
        from edgekd.bench.artifacts import default_bench_dir
        from edgekd.bench.report import load_report, print_table

        for t in targets:  # the reports are written last: find an unwritable folder before measuring
            if t.exists():
                console.check_writable(out or default_bench_dir(t), "bench folder", "pass --out with a folder you can write")
        if len(targets) > 1:
            console.check_writable(merged_out or default_bench_dir(targets[0]).parent.parent / "bench-compare",
                                   "merged report folder", "pass --merged-out with a folder you can write")
        dirs, merged, v = bench_many(list(targets), profile, merged_dir=merged_out, out_dir=out,
                                     batch_sizes=console.positive_ints(batch_sizes, "--batch-sizes"), iterations=iterations,
                                     warmup=warmup, eval_data=eval_data, eval_limit=eval_limit, e2e_clips=e2e_clips,
                                     runtimes=_words(runtimes), precisions=_words(precisions), threads=threads,
                                     reporter=console.reporter())
        for d in dirs:
            print_table(load_report(d), console.out)
            console.out.print(f"report: {d / 'report.md'}", highlight=False)
        if merged is not None:
            console.out.print(f"merged Pareto plot: {merged / 'pareto.png'}", highlight=False)
            console.out.print(f"[bold]verdict:[/bold] {v['text']}", highlight=False)
