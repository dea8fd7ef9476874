"""`edgekd teacher ...` end to end on the tiny synthetic videos, through the real CLI entry point."""

import json

import pytest

from edgekd.cli.main import main
from vl_tiny import hf_clip_dir


@pytest.fixture(scope="module")
def vl_teacher(tmp_path_factory, tiny_synth):
    out = tmp_path_factory.mktemp("cli") / "vl"
    assert main(["teacher", "pretrain", "--objective", "vl", "--data", str(tiny_synth), "--out", str(out),
                 "--epochs", "1", "--batch-size", "8", "--workers", "0"]) == 0
    return out


def test_pretrain_vl_reports_its_zero_shot(vl_teacher, capsys):
    meta = json.loads((vl_teacher / "teacher.json").read_text())
    assert meta["type"] == "embedded-vl" and "zeroshot" in meta["metrics"]


def test_zeroshot_prints_top1_top5_for_a_hugging_face_clip(tiny_synth, tmp_path, capsys):
    folder = hf_clip_dir(tmp_path / "clip")
    code = main(["teacher", "zeroshot", str(folder), "--data", str(tiny_synth), "--workers", "0",
                 "-t", "a video of {}.", "-t", "a shape that {}.", "--per-class"])
    text = capsys.readouterr().out
    assert code == 0
    assert "zero-shot classification" in text and "top-1" in text and "25.0 %" in text   # chance of 4 classes
    assert "'a shape that {}.'" in text and "top-1 per class" in text


def test_finetune_then_cache(vl_teacher, tiny_synth, tmp_path, capsys):
    ft = tmp_path / "ft"
    assert main(["teacher", "finetune", str(vl_teacher), "--data", str(tiny_synth), "--out", str(ft),
                 "--labeled-per-class", "2", "--epochs", "5", "--workers", "0"]) == 0
    assert "fine-tuned teacher written" in capsys.readouterr().out
    assert json.loads((ft / "teacher.json").read_text())["config"]["num_classes"] == 4
    cache = tmp_path / "cache"
    assert main(["teacher", "cache", f"vl={ft}", "--data", str(tiny_synth), "--out", str(cache),
                 "--clips-per-video", "2", "--workers", "0"]) == 0
    assert (cache / "index.json").is_file() and "teacher cache" in capsys.readouterr().out


def test_refusals_are_one_red_line(vl_teacher, tiny_synth, tmp_path, capsys):
    assert main(["teacher", "pretrain", "--objective", "contrastive", "--out", str(tmp_path / "x")]) != 0
    assert "unknown objective 'contrastive'" in capsys.readouterr().err
    assert main(["teacher", "finetune", str(vl_teacher), "--data", str(tiny_synth), "--out", str(vl_teacher)]) != 0
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert main(["teacher", "pretrain", "--objective", "vl", "--data", str(tiny_synth), "--out", str(tmp_path / "y"),
                 "--set", "widht=2"]) != 0
    err = capsys.readouterr().err
    assert "unknown key 'widht'" in err and "width" in err
    assert main(["teacher", "zeroshot", "open_clip:ViT-B-32:/nowhere/vit.pt", "--data", str(tiny_synth)]) != 0
    assert "no open_clip weights at /nowhere/vit.pt" in capsys.readouterr().err


def test_ssl_pretrain_on_frame_differences(tiny_synth, tmp_path, capsys):
    out = tmp_path / "inv"
    assert main(["teacher", "pretrain", "--objective", "invariant", "--data", str(tiny_synth), "--out", str(out),
                 "--labeled-per-class", "2", "--frames-in", "diff", "--epochs", "1", "--batch-size", "4",
                 "--set", "clips=2", "--workers", "0"]) == 0
    assert json.loads((out / "teacher.json").read_text())["config"]["frames_in"] == "diff"
    assert "invariant teacher written" in capsys.readouterr().out
    assert main(["teacher", "pretrain", "--objective", "distinctive", "--data", str(tiny_synth),
                 "--out", str(tmp_path / "d"), "--labeled-per-class", "2", "--frames-in", "gray"]) != 0
    err = capsys.readouterr().err
    assert "frames_in 'gray'" in err and "rgb" in err and not (tmp_path / "d").exists()
