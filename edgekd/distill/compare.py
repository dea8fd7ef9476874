"""Train a run and, when run.baseline is set, the supervised baseline beside it; print both."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def train_and_compare(cfg, resume=None, stop_after: Optional[int] = None, log=None, out=None) -> Path:
    """Train `cfg`'s run and, when run.baseline is set, the supervised baseline on the same labels and
    budget; print both side by side. Returns the main run's folder."""
    import dataclasses
    import time

    from edgekd.distill.train import distill

    from edgekd.report import make_console

    log = log or make_console(stderr=True)
    t0 = time.perf_counter()
    main_run = distill(cfg, resume=resume, stop_after=stop_after, console=log)
    rows = [(main_run, time.perf_counter() - t0)]
    if cfg.run.baseline and cfg.recipe.name != "supervised" and resume is None and stop_after is None:
        base = dataclasses.replace(
            cfg, recipe=dataclasses.replace(cfg.recipe, name="supervised"),
            run=dataclasses.replace(cfg.run, baseline=False, name=f"{cfg.run.name}-baseline" if cfg.run.name else None))
        log.print("\n[bold]supervised baseline[/bold] on the same labels, same budget")
        t1 = time.perf_counter()
        rows.append((distill(base, console=log), time.perf_counter() - t1))
    _print_comparison(rows, out or log)
    return main_run


def _print_comparison(rows: list[tuple[Path, float]], out) -> None:
    import os

    from rich.table import Table

    from edgekd.distill.train import read_metrics

    if int(os.environ.get("RANK", "0")) != 0:
        return
    table = Table(title="test top-1 (single centre clip per video)")
    for col in ("run", "recipe", "student", "labels", "epochs", "top-1", "best", "time"):
        right = col in ("epochs", "top-1", "best", "time")
        table.add_column(col, justify="right" if right else "left", overflow="fold", no_wrap=right)
    results = []
    for run_dir, seconds in rows:
        m = read_metrics(run_dir)
        if not m:
            continue
        from edgekd.config import load_toml

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
    out.print(table)
    out.print("runs in " + ", ".join(str(r) for r, _ in rows))
