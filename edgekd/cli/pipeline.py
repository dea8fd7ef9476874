"""`edgekd pipeline`: distill -> export -> bench in one command.

    edgekd pipeline                                   the embedded synthetic default, on this machine
    edgekd pipeline --data DATA -p orin-nano-8gb-15w --trt
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from edgekd.cli import console


def register(app: typer.Typer) -> None:
    @app.command("pipeline")
    def pipeline(
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="Distill config TOML (default: built-in)."),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="Config override key=value (repeatable)."),
        data: Optional[str] = typer.Option(None, "--data", "-d", help="Dataset path; default: the embedded synthetic dataset."),
        video_root: Optional[str] = typer.Option(None, "--video-root", help=console.VIDEO_ROOT_HELP),
        recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help="Distillation recipe (default: auto, chosen from the data)."),
        labeled: Optional[float] = typer.Option(None, "--labeled", "-l", help="Fraction of train videos with labels."),
        teacher: Optional[List[str]] = typer.Option(None, "--teacher", "-t", help="ROLE=PATH teacher for a role (repeatable)."),
        template: Optional[List[str]] = typer.Option(None, "--template", help="Class-name prompt for the VL teacher without captions."),
        profile: str = typer.Option("host", "--profile", "-p", help="Profile for export (TensorRT) and bench."),
        trt: bool = typer.Option(False, "--trt", help="Also build a TensorRT engine (or its build manifest)."),
        iterations: Optional[int] = typer.Option(None, "--iterations", "-n", help="Bench: timed calls per batch size."),
        batch_sizes: Optional[str] = typer.Option(None, "--batch-sizes", "-b", help="Bench: batch sizes."),
        eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="Bench: at most this many eval clips."),
    ) -> None:
        """distill -> export -> bench in one command (the embedded synthetic default when given nothing)."""
        from edgekd.bench.api import bench as run_bench
        from edgekd.bench.report import load_report, print_table
        from edgekd.distill.compare import train_and_compare
        from edgekd.distill.config import flag_overrides, load_config, with_templates
        from edgekd.export.api import export_run
        from edgekd.runtime.profiles import load_profile

        prof = load_profile(profile)  # fail on a bad profile before training, not after
        overrides = flag_overrides(teacher, data=data, video_root=video_root, recipe=recipe, labeled=labeled) + list(set_ or [])
        cfg = with_templates(load_config(config, overrides), template)
        console.check_run_folder(cfg)  # the run folder also holds the export and bench folders
        console.out.rule("[bold]1/3 distill")
        # and the supervised baseline, unless run.baseline=false
        run_dir = train_and_compare(cfg, reporter=console.reporter(), table_console=console.out)
        console.out.rule("[bold]2/3 export")
        export_dir = export_run(run_dir, profile=prof, trt=trt, reporter=console.reporter())
        console.out.rule("[bold]3/3 bench")
        bench_dir = run_bench(run_dir, prof, iterations=iterations,
                              batch_sizes=console.positive_ints(batch_sizes, "--batch-sizes"),
                              eval_limit=eval_limit, reporter=console.reporter())
        report = load_report(bench_dir)
        print_table(report, console.out)
        console.out.print(f"run: {run_dir}   export: {export_dir}", highlight=False)
        console.out.print(f"report: {bench_dir / 'report.md'}", highlight=False)  # the verdict ends the table above
