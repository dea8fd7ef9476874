import json

import numpy as np
import pytest

from edgekd.bench.report import Point, load_report, merge, plot_pareto


def _png(path):
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        return im.size


def test_report_files_exist_and_parse(x86_bench, x86_report):
    for name in ("report.json", "report.md", "pareto.png"):
        assert (x86_bench / name).is_file()
    r = x86_report
    assert r["profile"]["name"] == "x86-cpu" and r["target"]["on_target"] is True
    env = r["environment"]
    assert env["cpu"] and env["libraries"]["torch"] and "onnxruntime" in env["libraries"]
    lat = r["rows"][0]["latency"]
    assert [s["batch_size"] for s in lat] == [1, 2]
    assert all(s["p50_ms"] <= s["p99_ms"] and s["iterations"] == 5 for s in lat)
    e2e = r["rows"][0]["end_to_end"]
    assert e2e["clips"] == 3 and e2e["total"]["p50_ms"] >= e2e["engine"]["min_ms"]
    assert r["rows"][0]["peak_memory_mb"] is not None
    md = (x86_bench / "report.md").read_text()
    assert "MEASURED" in md and "| ort-cpu | fp32 | " in md and "Verdict" in md


def test_plot_is_a_real_png_with_the_expected_points(x86_bench, x86_report):
    assert _png(x86_bench / "pareto.png") == (800, 550)
    ok_rows = [r for r in x86_report["rows"] if r["status"] == "ok"]
    assert len(x86_report["pareto_points"]) == len(ok_rows) == 3  # ort fp32, ort int8, torch fp32
    assert {p["kind"] for p in x86_report["pareto_points"]} == {"measured"}


def test_offsite_latency_is_an_estimate_everywhere(offsite_bench, offsite_report):
    r = offsite_report
    assert r["target"]["on_target"] is False and r["target"]["latency_kind"] == "estimate"
    pts = r["pareto_points"]
    assert len(pts) == 3 and {p["kind"] for p in pts} == {"estimate"}  # one per precision
    assert {p["precision"] for p in pts} == {"fp32", "fp16", "int8"}
    assert "estimate" in r["verdict"]["text"] and "not a measurement" in r["verdict"]["text"]
    md = (offsite_bench / "report.md").read_text()
    assert "ESTIMATES" in md and "ESTIMATE |" in md
    fp16 = next(e for e in r["estimates"] if e["precision"] == "fp16")
    assert "accuracy only" in fp16["top1_from"]
    for row in r["rows"]:  # host measurements never carry an efficiency against the profile's roofline
        assert row.get("roofline") is None or row["roofline"]["efficiency"] is None


def test_plot_returns_what_it_drew(tmp_path):
    pts = [Point("a", "ort-cpu fp32", "fp32", 5.0, 0.5, "measured"),
           Point("a", "ort-cpu int8", "int8", 2.0, 0.45, "measured"),
           Point("b", "int8 (estimate)", "int8", 0.1, 0.6, "estimate")]
    drawn = plot_pareto(pts, tmp_path / "p.png", budgets={"x": 3.0}, title="t")
    assert drawn == pts and _png(tmp_path / "p.png") == (800, 550)


def test_merge_two_runs_into_one_plot(x86_bench, offsite_bench, tmp_path):
    reports = [load_report(x86_bench), load_report(offsite_bench / "report.json")]
    out, plotted, v = merge(reports, tmp_path / "merged")
    assert len(plotted) == 3 + 3
    assert _png(out / "pareto.png") == (800, 550)
    summary = json.loads((out / "report.json").read_text())
    assert len(summary["runs"]) == 2 and summary["verdict"]["text"] == v["text"]


def test_verdict_picks_best_accuracy_within_budget():
    from edgekd.bench.report import verdict

    pts = [Point("a", "x fp32", "fp32", 10.0, 0.9, "measured"), Point("a", "x int8", "int8", 2.0, 0.8, "measured"),
           Point("b", "y fp32", "fp32", 4.0, 0.85, "measured")]
    assert verdict(pts, 5.0, "dev")["best"]["label"] == "y fp32"
    assert verdict(pts, 1.0, "dev")["best"] is None
    assert "none meets" in verdict(pts, 1.0, "dev")["text"]
