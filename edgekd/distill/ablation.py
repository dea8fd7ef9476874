"""The papers' claims, checked on our data: the supervised baseline and every recipe at several label
fractions, same student, same budget, same seed(s); a markdown table and a JSON file.

Expected shape (VL Table 3; TimeBalance Table 3): every distillation recipe beats supervised;
feature+pseudo >= feature; timebalance >= timebalance-avg >= timebalance-one. `checks` reports,
claim by claim, whether the measurement agrees.

Runs live in OUT/<recipe>-<pct>pct-s<seed>; a finished run is reused and an unfinished one resumed,
so an interrupted ablation continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

from edgekd.distill.config import load_config
from edgekd.distill.recipes import RECIPES
from edgekd.io import write_json, write_text_atomic
from edgekd.report import Reporter

EPOCHS = 10  # per run: 16 runs (8 recipes x 2 fractions) take about 20 min on 2 CPU cores

ORDER = ("supervised", "feature", "pseudo", "feature+pseudo", "kd", "timebalance-one", "timebalance-avg",
         "timebalance")


def _claims(recipes: list[str]) -> list[tuple[str, str, str]]:
    """(better, worse, claim) pairs the papers predict, among the recipes being run."""
    out = [(r, "supervised", f"{r} > supervised") for r in recipes if r != "supervised"]
    for a, b in (("feature+pseudo", "feature"), ("timebalance", "timebalance-avg"),
                 ("timebalance-avg", "timebalance-one")):
        if a in recipes and b in recipes:
            out.append((a, b, f"{a} >= {b}"))
    return out


def run_ablation(fractions: list[float], recipes: list[str] | None = None, epochs: int | None = EPOCHS,
                 out: str | Path = "runs/ablation", data: str | None = None, overrides: list[str] | None = None,
                 seeds: list[int] | None = None, reporter: Reporter | None = None,
                 table_console=None) -> dict[str, Any]:
    from edgekd.distill.train import distill, read_metrics

    reporter = reporter or Reporter()
    out = Path(out)
    recipes = [r for r in ORDER if r in (recipes or RECIPES.names())] + \
              [r for r in (recipes or []) if r not in ORDER]
    if "supervised" not in recipes:
        recipes.insert(0, "supervised")
    for r in recipes:
        RECIPES.get(r)  # did-you-mean before anything trains
    seeds = seeds or [0]
    results: dict[str, Any] = {"fractions": fractions, "recipes": recipes, "seeds": seeds, "runs": []}
    t_start = time.perf_counter()
    total = len(fractions) * len(seeds) * len(recipes)
    k = 0
    for frac in fractions:
        for seed in seeds:
            for recipe in recipes:
                k += 1
                name = f"{recipe.replace('+', '-')}-{frac * 100:g}pct-s{seed}"
                sets = [f"data.labeled={frac}", f"recipe.name={recipe}", f"train.seed={seed}",
                        f"run.dir={out}", f"run.name={name}", "run.baseline=false"]
                if data:
                    sets.append(f"data.path={data}")
                if epochs:
                    sets.append(f"train.epochs={epochs}")
                cfg = load_config(None, sets + list(overrides or []))
                run_dir = out / name
                done = read_metrics(run_dir)
                reporter.print(f"[bold]== ablation {k}/{total}: {recipe} at {frac * 100:g}% labels, seed {seed}")
                t0 = time.perf_counter()
                if done and done[-1]["epoch"] >= cfg.train.epochs:
                    reporter.print(f"reusing finished run {run_dir}")
                else:
                    resume = run_dir if (run_dir / "checkpoint.pt").is_file() else None
                    if resume is not None:
                        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, name=run_dir.name))
                    distill(cfg, resume=resume, reporter=reporter)
                m = read_metrics(run_dir)[-1]
                results["runs"].append({"recipe": recipe, "labeled": frac, "seed": seed, "run": str(run_dir),
                                        "top1": m["top1"], "best_top1": m["best_top1"], "epochs": m["epoch"],
                                        "seconds": round(time.perf_counter() - t0, 1)})
    if any(r.startswith("timebalance") for r in recipes):
        from edgekd.distill.teacher_targets import teacher_targets

        reporter.print("[bold]== teacher targets: top-1 of what each recipe distils towards")
        base = ([f"data.path={data}"] if data else []) + list(overrides or [])
        results["targets"] = {str(f): teacher_targets(load_config(None, [f"data.labeled={f}"] + base),
                                                      reporter=reporter) for f in fractions}
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    results["table"] = _table(results)
    results["checks"] = _checks(results)
    results["config"] = load_config(None, [f"data.labeled={fractions[0]}", "recipe.name=supervised"]
                                    + ([f"train.epochs={epochs}"] if epochs else []) + list(overrides or [])).to_dict()
    write_json(out / "ablation.json", results)
    write_text_atomic(out / "ablation.md", markdown(results))
    _print(results, table_console or reporter.console)
    reporter.print(f"wrote {out / 'ablation.md'} and {out / 'ablation.json'}")
    return results


def _table(results: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """recipe -> fraction -> {mean, std, n} of final-epoch top-1 over seeds."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for r in results["recipes"]:
        for f in results["fractions"]:
            vals = [x["top1"] for x in results["runs"] if x["recipe"] == r and x["labeled"] == f]
            if vals:
                table.setdefault(r, {})[str(f)] = {"mean": statistics.fmean(vals),
                                                   "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0,
                                                   "n": len(vals)}
    return table


def _checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    table, checks = results["table"], []
    for a, b, claim in _claims(results["recipes"]):
        for f in results["fractions"]:
            ta, tb = table[a][str(f)]["mean"], table[b][str(f)]["mean"]
            strict = b == "supervised"
            ok = ta > tb if strict else ta >= tb
            checks.append({"claim": claim, "labeled": f, "holds": ok, "delta": ta - tb})
    return checks


def markdown(results: dict[str, Any]) -> str:
    fr = results["fractions"]
    seeds = results["seeds"]
    head = "| recipe | " + " | ".join(f"{f * 100:g}% labels" for f in fr) + " |"
    lines = [head, "|---|" + "---:|" * len(fr)]
    sup = results["table"].get("supervised", {})
    for r in results["recipes"]:
        cells = []
        for f in fr:
            c = results["table"][r][str(f)]
            cell = f"{100 * c['mean']:.1f}" + (f" ± {100 * c['std']:.1f}" if c["n"] > 1 else "")
            if r != "supervised" and str(f) in sup:
                d = 100 * (c["mean"] - sup[str(f)]["mean"])
                cell += f" ({'+' if d >= 0 else ''}{d:.1f})"
            cells.append(cell)
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    lines += ["", f"Test top-1 (%) after the last epoch, single centre clip per video; "
              f"{'mean ± std over seeds ' + ', '.join(map(str, seeds)) if len(seeds) > 1 else f'seed {seeds[0]}'}; "
              "in brackets: points over the supervised baseline.", "", "| claim (papers) | labels | holds | Δ points |",
              "|---|---:|:---:|---:|"]
    for c in results["checks"]:
        lines.append(f"| {c['claim']} | {c['labeled'] * 100:g}% | {'yes' if c['holds'] else '**no**'} | "
                     f"{100 * c['delta']:+.1f} |")
    if results.get("targets"):
        lines += ["", *_targets_markdown(results)]
    lines += ["", f"Total time {results['seconds'] / 60:.1f} min."]
    return "\n".join(lines) + "\n"


TARGET_ROWS = (("vl", "VL teacher (pseudo, kd)"), ("timebalance-one", "p_I: invariant teacher (timebalance-one)"),
               ("timebalance-avg", "(p_I + p_D) / 2 (timebalance-avg)"),
               ("timebalance", "s p_I + (1 - s) p_D, Eq. 7 (timebalance)"), ("distinctive", "p_D: distinctive teacher"))


def _targets_markdown(results: dict[str, Any]) -> list[str]:
    """Top-1 of each recipe's distillation target on the test videos, and Eq. 6's s by temporal kind."""
    fr = [str(f) for f in results["fractions"]]
    t = results["targets"]
    lines = ["Teacher targets: test top-1 (%) of what each recipe distils towards (edgekd.distill.teacher_targets).",
             "", "| target | " + " | ".join(f"{float(f) * 100:g}% labels" for f in fr) + " |",
             "|---|" + "---:|" * len(fr)]
    for key, label in TARGET_ROWS:
        if key in t[fr[0]]["groups"]["all"]:
            lines.append(f"| {label} | " + " | ".join(f"{100 * t[f]['groups']['all'][key]:.1f}" for f in fr) + " |")
    kinds = list(t[fr[0]]["groups"])
    lines += ["", f"Eq. 6 score s (mean ± std over test videos, {t[fr[0]]['clips']} clips each) by temporal kind:", "",
              "| kind | videos | " + " | ".join(f"s at {float(f) * 100:g}%" for f in fr) + " |",
              "|---|---:|" + "---:|" * len(fr)]
    for k in kinds:
        g0 = t[fr[0]]["groups"][k]
        lines.append(f"| {k} | {g0['videos']} | " + " | ".join(
            f"{t[f]['groups'][k]['s_mean']:.3f} ± {t[f]['groups'][k]['s_std']:.3f}" for f in fr) + " |")
    return lines


def _print(results: dict[str, Any], console) -> None:
    from rich.table import Table

    t = Table(title="ablation: test top-1 (final epoch)")
    t.add_column("recipe")
    for f in results["fractions"]:
        t.add_column(f"{f * 100:g}% labels", justify="right")
    sup = results["table"].get("supervised", {})
    for r in results["recipes"]:
        cells = []
        for f in results["fractions"]:
            c = results["table"][r][str(f)]
            d = "" if r == "supervised" else f" ({100 * (c['mean'] - sup[str(f)]['mean']):+.1f})"
            cells.append(f"{100 * c['mean']:.1f}%{d}")
        t.add_row(r, *cells)
    console.print(t)
    if results.get("targets"):
        fr = [str(f) for f in results["fractions"]]
        tt = Table(title="teacher targets: test top-1 of what each recipe distils towards")
        tt.add_column("target")
        for f in fr:
            tt.add_column(f"{float(f) * 100:g}% labels", justify="right")
        for key, label in TARGET_ROWS:
            if key in results["targets"][fr[0]]["groups"]["all"]:
                tt.add_row(label, *(f"{100 * results['targets'][f]['groups']['all'][key]:.1f}%" for f in fr))
        console.print(tt)
    bad = [c for c in results["checks"] if not c["holds"]]
    console.print(f"{len(results['checks']) - len(bad)}/{len(results['checks'])} of the papers' orderings hold"
                  + ("; not: " + "; ".join(f"{c['claim']} at {c['labeled'] * 100:g}%" for c in bad) if bad else ""))
