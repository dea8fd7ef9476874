"""A new user's own videos, end to end from the CLI: UCF101 and HMDB51 layouts as the downloads unpack,
no captions, broken files; no `--set teacher.*` anywhere (issue: "your own videos").

One test per layout keeps the teacher cache between its steps: the second recipe that needs a
teacher must find it built.
"""

import json

from datasets import bad_videos, make_hmdb51, make_ucf101

from edgekd.cli.main import main

TINY = ["--epochs", "1", "--labeled", "0.5", "--no-tensorboard", "--workers", "0",
        "--set", "data.frames=4", "--set", "data.size=32", "--set", "train.batch_size=2",
        "--set", "train.unlabeled_batch_size=2"]


def _teacher_stamps(home):
    return {str(p): p.stat().st_mtime_ns for p in (home / "teachers").rglob("teacher.json")}


def _built(home):
    """Names of the embedded teachers built so far ("vl", "invariant", ...)."""
    return sorted(p.parent.name.rsplit("-", 1)[0] for p in (home / "teachers").rglob("build.json"))


def test_ucf101_layout_every_recipe_then_export_and_bench(tmp_path, edgekd_home, capsys):
    split_dir = make_ucf101(tmp_path / "UCF101", per_class=4, frames=12, size=(48, 64))
    runs = tmp_path / "runs"
    base = ["--data", str(split_dir), *TINY, "--set", f"run.dir={runs}"]
    bad = bad_videos(split_dir)

    # no recipe: no captions in the data, so TimeBalance, and the header says why
    assert main(["distill", *base, "--name", "auto", "--no-baseline"]) == 0
    err = capsys.readouterr().err
    assert "recipe timebalance (auto): no captions" in err
    assert _built(edgekd_home) == ["distinctive", "invariant"]            # nothing the recipe does not use
    for path in bad.values():
        assert err.count(str(path)) == 1, f"{path} reported {err.count(str(path))} times"
    skipped = (runs / "auto" / "skipped_videos.txt").read_text()
    assert all(str(p) in skipped for p in bad.values())

    # the same recipe again: the teachers come from the cache, nothing is rebuilt
    stamps = _teacher_stamps(edgekd_home)
    assert main(["distill", *base, "--recipe", "timebalance", "--name", "tb", "--no-baseline"]) == 0
    assert "building the embedded" not in capsys.readouterr().err
    assert _teacher_stamps(edgekd_home) == stamps

    # feature+pseudo builds only the VL teacher, from class-name prompts; kd with the same prompts reuses it
    prompt = ["--template", "a video of a person doing {}."]
    assert main(["distill", *base, "--recipe", "feature+pseudo", "--epochs", "2", "--name", "fp",  # two stages
                 "--no-baseline", *prompt]) == 0
    err = capsys.readouterr().err
    assert "building the embedded vl teacher from prompts" in err
    assert _built(edgekd_home) == ["distinctive", "invariant", "vl"]
    vl_meta = next((edgekd_home / "teachers").rglob("vl-*/pretrained/teacher.json"))
    assert json.loads(vl_meta.read_text())["config"]["pretrain"]["templates"] == ["a video of a person doing {}."]
    stamps = _teacher_stamps(edgekd_home)
    assert main(["distill", *base, "--recipe", "kd", "--name", "kd", *prompt]) == 0  # with its supervised baseline
    assert _teacher_stamps(edgekd_home) == stamps
    out = capsys.readouterr().out
    assert "kd-baseline" in out and "over the supervised baseline" in out

    # the student ships: export proves ONNX against PyTorch, bench measures it
    assert main(["export", str(runs / "kd"), "--no-quantize"]) == 0  # INT8 on a 1-epoch student: tests/export
    art = json.loads((runs / "kd" / "export" / "artifact.json").read_text())
    assert art["parity_inputs"]["clips"]["split"] == "test"                      # proven on this data's clips
    assert [a["file"] for a in art["artifacts"]][0] == "student.onnx" and all(a["parity"]["passed"] for a in art["artifacts"])
    assert main(["bench", str(runs / "kd"), "-n", "2", "-b", "1", "--eval-limit", "3"]) == 0
    assert (runs / "kd" / "bench" / "report.json").is_file()


def test_hmdb51_layout_inspect_split_and_distill(tmp_path, edgekd_home, capsys):
    split_dir = make_hmdb51(tmp_path / "HMDB", per_class=4, frames=12, size=(48, 64), video_dir="videos")
    assert main(["data", "inspect", str(split_dir)]) == 0
    assert str(tmp_path / "HMDB" / "videos") in capsys.readouterr().out         # found, though not hmdb51_org
    assert main(["data", "check", str(split_dir)]) == 2                          # decodes: finds the truncated one
    captured = capsys.readouterr()
    for path in bad_videos(split_dir).values():                                  # each broken file named whole
        assert str(path) in captured.out + captured.err
    assert main(["data", "split", str(split_dir), "--labeled-per-class", "1", "--out", str(tmp_path / "s.json")]) == 0
    assert main(["distill", "--data", str(split_dir), *TINY, "--recipe", "kd", "--no-baseline",
                 "--set", f"data.split_file={tmp_path / 's.json'}", "--set", f"run.dir={tmp_path / 'runs'}",
                 "--name", "hmdb"]) == 0
    assert _built(edgekd_home) == ["vl"]
    assert (tmp_path / "runs" / "hmdb" / "checkpoint.pt").is_file()
