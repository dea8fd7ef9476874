"""Bad videos in a training run: each reported once across epochs, all listed in skipped_videos.txt."""

from datasets import bad_videos, make_ucf101

from edgekd.cli.main import main


def test_distill_reports_each_bad_video_once_and_lists_them_in_the_run_folder(tmp_path, capsys, edgekd_home):
    split_dir = make_ucf101(tmp_path / "ucf", per_class=3, frames=12, size=(48, 64))
    assert main(["distill", "--data", str(split_dir), "--recipe", "supervised", "--labeled", "1", "--epochs", "3",
                 "--workers", "2", "--name", "bad", "--no-baseline", "--no-tensorboard",
                 "--set", "data.frames=4", "--set", "data.size=32", "--set", "train.batch_size=2",
                 "--set", f"run.dir={tmp_path / 'runs'}"]) == 0
    err = capsys.readouterr().err
    bad = bad_videos(split_dir)
    for path in bad.values():
        assert err.count(str(path)) == 1, f"{path} reported {err.count(str(path))} times"
    assert all(line.startswith("warning: ") for line in err.splitlines() if str(bad["empty"].parent) in line)
    rows = [line.split("\t") for line in (tmp_path / "runs" / "bad" / "skipped_videos.txt").read_text().splitlines()]
    assert sorted(p for p, _ in rows) == sorted(str(p) for p in bad.values())
    assert dict(rows)[str(bad["empty"])] == "empty (0 bytes)" and all(reason for _, reason in rows)
