"""`edgekd data synth | inspect | split` end to end through the CLI entry point."""

import shutil

from datasets import bad_videos, make_hmdb51, make_ucf101

from edgekd.cli import console
from edgekd.cli.main import main
from edgekd.data.manifest import Manifest
from edgekd.data.splits import SemiSplit


def test_synth_then_inspect_then_split(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "synth", str(out), "--classes", "3", "--videos-per-class", "4", "--frames", "12",
                 "--size", "24", "--seed", "5"]) == 0
    assert "wrote 12 videos" in capsys.readouterr().out
    m = Manifest.load(out / "manifest.json")
    assert m.num_classes == 3 and len(m) == 12

    assert main(["data", "inspect", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("move_left", "oscillate_horizontal", "train", "test", "16.0", "24x24", "h264",
                   "every video is readable"):
        assert needle in text

    split_file = tmp_path / "labeled.txt"
    assert main(["data", "split", str(out), "--labeled-per-class", "1", "--seed", "3", "--out", str(split_file)]) == 0
    semi = SemiSplit.load(split_file)
    assert len(semi.labeled) == 3 and len(semi.unlabeled) == 6  # 3 train videos per class, 1 labeled
    assert "split written to" in capsys.readouterr().out


def test_inspect_lists_every_unreadable_file_with_its_reason(tiny_synth, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(console.out, "width", 300)  # keep long paths on one line
    src = tiny_synth.parent / "videos"
    for c in ("move_left", "move_right"):
        shutil.copytree(src / c, tmp_path / c)
    (tmp_path / "move_left" / "notes.mp4").write_text("not a video")
    (tmp_path / "move_right" / "empty.avi").write_bytes(b"")
    good = tmp_path / "move_right" / "move_right_000.mp4"
    good.write_bytes(good.read_bytes()[:200])
    assert main(["data", "inspect", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "empty.avi" in captured.err  # dropped while loading: warned
    text = captured.out
    assert "3 unreadable video(s)" in text
    for name in ("notes.mp4", "empty.avi", "move_right_000.mp4"):
        assert name in text
    assert "empty (0 bytes)" in text and "Invalid data found" in text
    assert main(["data", "check", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "11 of 14 videos decode" in captured.out and "3 video(s)" in captured.err
    assert main(["data", "check", str(tiny_synth)]) == 0


def test_bad_input_is_one_red_line_with_a_hint(tmp_path, capsys):
    missing = tmp_path / ("d" * 150) / "missing [videos]"  # longer than any terminal; rich markup chars
    assert main(["data", "inspect", str(missing)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"error: {missing} does not exist"  # whole on one line, copyable
    assert lines[1].startswith("hint: ") and len(lines) == 2
    (tmp_path / "empty").mkdir()
    assert main(["data", "split", str(tmp_path / "empty"), "--labeled-fraction", "0.1"]) == 2
    assert "empty folder" in capsys.readouterr().err


def test_split_rejects_a_fraction_outside_0_1(tiny_synth, tmp_path, capsys):
    assert main(["data", "split", str(tiny_synth), "--labeled-fraction", "1.5", "--out", str(tmp_path / "s.txt")]) == 2
    assert "labeled fraction must be in (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "s.txt").exists()


def test_inspect_and_split_on_ucf101_and_hmdb51_downloads(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(console.out, "width", 400)  # table cells fold long paths; keep them whole here
    ucf = make_ucf101(tmp_path / "ucf", per_class=3, frames=12)  # 320x240 MPEG-4 AVI, CRLF split files
    hmdb = make_hmdb51(tmp_path / "hmdb", per_class=4, frames=12, video_dir="hmdb51")
    for split_dir, root, classes in ((ucf, "UCF-101", "ApplyEyeMakeup"), (hmdb, "hmdb51", "climb_stairs")):
        assert main(["data", "inspect", str(split_dir.parent), "--decode"]) == 0
        captured = capsys.readouterr()
        assert f"{split_dir.parent / root}" in captured.out and classes in captured.out
        assert "320x240" in captured.out and "mpeg4" in captured.out and "3 unreadable video(s)" in captured.out
        bad = bad_videos(split_dir)
        warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
        assert warnings == [f"warning: skipping 1 video(s) that cannot be used: {bad['empty']}: empty (0 bytes)"]
        for kind, reason in (("truncated", "truncated: "),
                             ("not a video", "Invalid data found when processing input")):
            assert str(bad[kind]) in captured.out and reason in captured.out

        out_file = tmp_path / f"{root}.txt"
        assert main(["data", "split", str(split_dir), "--labeled-per-class", "1", "--out", str(out_file)]) == 0
        semi = SemiSplit.load(out_file)
        assert len(semi.labeled) == 3 and str(bad["empty"].name) not in " ".join(semi.unlabeled)
        assert "split written to" in capsys.readouterr().out


def test_video_root_flag_on_the_cli(tmp_path, capsys):
    split_dir = make_ucf101(tmp_path / "lists", per_class=2, frames=8, size=(32, 48), bad=False)
    shutil.move(tmp_path / "lists" / "UCF-101", tmp_path / "disk2")
    assert main(["data", "inspect", str(split_dir)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"error: {split_dir}: no folder beside it") and "--video-root" in err[1]
    assert main(["data", "inspect", str(split_dir), "--video-root", str(tmp_path / "disk2")]) == 0
    assert "every video is readable" in capsys.readouterr().out
