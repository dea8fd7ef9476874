"""A run and its supervised baseline on the same labels and budget, side by side (`edgekd distill`, `pipeline`)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from edgekd.report import Reporter


def train_and_compare(cfg, resume=None, stop_after: int | None = None, reporter: Reporter | None = None,
                      table_console=None) -> Path:
    """Train `cfg`'s run and, when run.baseline is set, the supervised baseline on the same labels and
    budget; print both side by side (on `table_console`, default the reporter's). Returns the main run's folder."""
    from edgekd.distill.train import distill

    reporter = reporter or Reporter()
    t0 = time.perf_counter()
    main_run = distill(cfg, resume=resume, stop_after=stop_after, reporter=reporter)
    rows = [(main_run, time.perf_counter() - t0)]
    if cfg.run.baseline and cfg.recipe.name != "supervised" and resume is None and stop_after is None:
        base = dataclasses.replace(
            cfg, recipe=dataclasses.replace(cfg.recipe, name="supervised"),
            run=dataclasses.replace(cfg.run, baseline=False, name=f"{main_run.name}-baseline"))
        reporter.print("\n[bold]supervised baseline[/bold] on the same labels, same budget")
        t1 = time.perf_counter()
        rows.append((distill(base, reporter=reporter), time.perf_counter() - t1))
    if int(os.environ.get("RANK", "0")) == 0:
        console = table_console or reporter.console
        console.print(comparison_table(rows))
        console.print("runs in " + ", ".join(str(r) for r, _ in rows))
    return main_run


def comparison_table(rows: list[tuple[Path, float]]):
    """rich Table of (run folder, seconds) rows: recipe, student, labels, top-1, and the gain over the last row."""
    from rich.table import Table

    from edgekd.config import load_toml
    from edgekd.distill.train import read_metrics

    table = Table(title="test top-1 (single centre clip per video)")
    for col in ("run", "recipe", "student", "labels", "epochs", "top-1", "best", "time"):
        right = col in ("epochs", "top-1", "best", "time")
        table.add_column(col, justify="right" if right else "left", overflow="fold", no_wrap=right)
    results = []
    for run_dir, seconds in rows:
        m = read_metrics(run_dir)
        if not m:
            continue
        c = load_toml(run_dir / "config.toml")
        last = m[-1]
        labels = (f"{c['data']['labeled_per_class']}/class" if "labeled_per_class" in c["data"]
                  else f"{100 * c['data'].get('labeled', 0):g}%")
        results.append(last.get("top1"))
        table.add_row(run_dir.name, c["recipe"]["name"], c["student"]["name"], labels, str(last["epoch"]),
                      f"{100 * last['top1']:.1f}%" if "top1" in last else "-",
                      f"{100 * last['best_top1']:.1f}%" if last.get("best_top1", -1) >= 0 else "-",
                      f"{seconds / 60:.1f} min")
    if len(results) == 2 and None not in results:
        delta = 100 * (results[0] - results[1])
        table.caption = f"{'+' if delta >= 0 else ''}{delta:.1f} points top-1 over the supervised baseline"
    return table
