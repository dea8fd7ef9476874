import json

from edgekd.cli.main import main


def test_bench_command_writes_reports(bench_run, tmp_path, capsys):
    out = tmp_path / "b"
    code = main(["bench", str(bench_run), "-p", "x86-cpu", "-n", "3", "--warmup", "0", "-b", "1", "--e2e-clips", "1",
                 "--runtimes", "ort-cpu", "--precisions", "fp32", "--threads", "1", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "report:" in text and "verdict" in text
    r = json.loads((out / "report.json").read_text())
    assert [(x["runtime"], x["precision"]) for x in r["rows"]] == [("ort-cpu", "fp32")]


def test_bench_bad_profile_is_one_red_line(bench_run, capsys):
    assert main(["bench", str(bench_run), "-p", "orin-nanoo"]) == 2
    err = capsys.readouterr().err
    assert "unknown profile 'orin-nanoo'" in err and "orin-nano-8gb-15w" in err
    assert "Traceback" not in err


def test_bench_runtime_not_in_profile(bench_run, capsys):
    assert main(["bench", str(bench_run), "--runtimes", "tensorrt"]) == 2
    assert "not in profile host" in capsys.readouterr().err


def test_pipeline_chains_distill_export_bench(run_copy, monkeypatch, capsys):
    """The wiring of `edgekd pipeline` (training itself is tested by the distill area)."""
    import edgekd.distill.train as train
    import edgekd.export.api as export_api

    calls = []
    monkeypatch.setattr(train, "distill", lambda cfg, **kw: calls.append(("distill", cfg)) or run_copy)
    monkeypatch.setattr(export_api, "export_run",
                        lambda run, **kw: calls.append(("export", run, kw.get("profile"))) or run / "export")
    code = main(["pipeline", "-p", "x86-cpu", "-n", "2", "-b", "1", "--eval-limit", "2"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert [c[0] for c in calls] == ["distill", "distill", "export"] and calls[2][2].name == "x86-cpu"
    assert calls[0][1].recipe.name == "auto" and calls[1][1].recipe.name == "supervised"  # the baseline
    assert "test top-1 (single centre clip per video)" in text   # the side-by-side table
    assert "report:" in text and "verdict:" in text and (run_copy / "bench" / "report.md").is_file()


def test_bench_several_runs_merges_one_pareto_plot(bench_run, tmp_path, capsys):
    import shutil

    runs = []
    for name in ("a", "b"):
        shutil.copytree(bench_run, tmp_path / name, ignore=shutil.ignore_patterns("bench"))
        runs.append(str(tmp_path / name))
    code = main(["bench", *runs, "-n", "2", "--warmup", "0", "-b", "1", "--e2e-clips", "0", "--threads", "1",
                 "--runtimes", "ort-cpu", "--merged-out", str(tmp_path / "merged")])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert {r["name"] for r in summary["runs"]} == {"a", "b"}
    assert len(summary["pareto_points"]) == 4  # 2 runs x ort-cpu x (fp32, int8)
    assert (tmp_path / "merged" / "pareto.png").read_bytes()[:4] == b"\x89PNG"
