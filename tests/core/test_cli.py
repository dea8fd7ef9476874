import subprocess
import sys

import pytest

from edgekd.cli.main import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert "edgekd" in capsys.readouterr().out


def test_help_is_fast_and_light():
    code = "import sys, edgekd.cli.main; print(any(m in sys.modules for m in ('torch', 'numpy', 'onnx', 'onnxruntime', 'tensorrt', 'transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "edgekd --help must not import heavy libraries"


def test_unknown_command_fails(capsys):
    assert main(["no-such-command"]) != 0


# -- every user mistake is a user error (exit 2, one line + a hint), found before any work ----------

def _error_lines(err: str) -> list[str]:
    lines = err.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["error", "hint"], err  # one error line, one hint line
    return lines


@pytest.mark.parametrize("argv, error, hint", [
    (["distill", "--labelled", "0.5"], "No such option: --labelled. Did you mean --labeled?", "edgekd distill --help"),
    (["distil"], "No such command 'distil'. Did you mean 'distill'?", "edgekd --help"),
    (["eval"], "Missing argument 'run'", "edgekd eval --help"),
    (["distill", "--epochs", "one"], "Invalid value for '--epochs'", "edgekd distill --help"),
    (["pipeline", "--epochs", "1"], "No such option: --epochs", "--set train.epochs=1"),
    (["ablate", "--student", "x3d_s"], "No such option: --student", "--set student.name=x3d_s"),
    (["pretrain", "tiny3d", "--labeled", "0.1"], "Did you mean --labeled-fraction?", "edgekd pretrain --help"),
    (["eval", "runs/x", "--recipe", "kd"], "No such option: --recipe", "edgekd eval --help"),  # not --clips
    (["bench", "runs/x", "--profile"], "Option '--profile' requires an argument", "edgekd bench --help"),
])
def test_usage_errors_exit_2_with_the_fix(argv, error, hint, capsys, monkeypatch):
    from edgekd.cli import console
    from edgekd.report import make_console

    monkeypatch.setenv("COLUMNS", "30")  # a narrow terminal must not wrap the lines
    monkeypatch.setattr(console, "err", make_console(stderr=True))
    assert main(argv) == 2
    first, second = _error_lines(capsys.readouterr().err)
    assert error in first and hint in second
    assert ("Did you mean" in first) == ("Did you mean" in error)  # and no far-fetched guess


def test_a_command_group_alone_shows_its_help(capsys):
    assert main(["data"]) == 2  # click's code for a help shown instead of a command
    captured = capsys.readouterr()
    assert "edgekd data [OPTIONS] COMMAND" in captured.out and "error" not in captured.err


def _stop_at_data(monkeypatch):
    """The distill flow stops with a sentinel when it reaches the data: validation must fail before that."""
    import edgekd.distill.train as train

    def reached(*a, **k):
        raise RuntimeError("reached the data")

    monkeypatch.setattr(train, "prepare_data", reached)


@pytest.mark.parametrize("flags, error, hint", [
    (["--student", "tiny3dd"], "unknown student 'tiny3dd'", "did you mean 'tiny3d'?"),
    (["--recipe", "feature-pseudo"], "unknown recipe 'feature-pseudo'", "'feature+pseudo'"),
    (["--recipe", "feature+pseudo", "--epochs", "1"], "needs 2 epochs or more, got 1", "--epochs 2"),
])
def test_bad_student_recipe_or_budget_fails_before_the_data(flags, error, hint, tmp_path, capsys, monkeypatch):
    _stop_at_data(monkeypatch)
    assert main(["distill", *flags, "--set", f"run.dir={tmp_path}"]) == 2
    first, second = _error_lines(capsys.readouterr().err)
    assert error in first and hint in second


def test_pipeline_checks_its_profile_and_student_before_training(tmp_path, capsys, monkeypatch):
    _stop_at_data(monkeypatch)
    assert main(["pipeline", "-p", "orin-nanoo", "--set", f"run.dir={tmp_path}"]) == 2
    assert "did you mean 'orin-nano" in capsys.readouterr().err
    assert main(["pipeline", "-p", "x86-cpu", "--set", "student.name=r3d18", "--set", f"run.dir={tmp_path}"]) == 2
    assert "did you mean 'r3d_18'" in capsys.readouterr().err


def test_ablate_checks_every_run_before_the_first_trains(tmp_path, capsys, monkeypatch):
    import edgekd.distill.ablation as ablation

    monkeypatch.setattr(ablation, "run_ablation", lambda **kw: pytest.fail("trained although a run cannot"))
    assert main(["ablate", "--labeled", "0.05,abc", "--out", str(tmp_path)]) == 2
    assert "--labeled takes comma-separated float values, got '0.05,abc'" in capsys.readouterr().err
    assert main(["ablate", "--recipes", "supervised,feature+pseudo", "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "recipe feature+pseudo trains in two stages" in capsys.readouterr().err


def _stop_at_teachers(monkeypatch) -> list:
    """load_teachers records the recipe it was asked for and stops the run (a user error, exit 2)."""
    import edgekd.distill.train as train
    from edgekd.errors import TeacherError

    seen = []

    def stop(cfg, recipe, *a, **k):
        seen.append(recipe.name)
        raise TeacherError("stopped at the teachers")

    monkeypatch.setattr(train, "load_teachers", stop)
    return seen


def test_auto_recipe_with_two_stages_needs_two_epochs(tiny_synth, tmp_path, capsys, monkeypatch):
    """The synthetic videos have captions: auto picks feature+pseudo, which one epoch would leave untrained."""
    seen = _stop_at_teachers(monkeypatch)
    base = ["distill", "--data", str(tiny_synth), "--workers", "0", "--set", f"run.dir={tmp_path}"]
    assert main([*base, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "recipe feature+pseudo (auto)" in err and "needs 2 epochs or more, got 1" in err and seen == []
    assert main([*base, "--epochs", "2"]) == 2 and seen == ["feature+pseudo"]


def test_auto_recipe_without_unlabeled_videos_is_not_timebalance(tiny_synth, tmp_path, capsys, monkeypatch):
    """Class folders have no captions: auto picks timebalance, unless every train video is labeled."""
    seen = _stop_at_teachers(monkeypatch)
    base = ["distill", "--data", str(tiny_synth.parent / "videos"), "--workers", "0", "--set", f"run.dir={tmp_path}"]
    assert main([*base, "--labeled", "0.5"]) == 2 and seen == ["timebalance"]
    assert main([*base, "--labeled", "1.0"]) == 2 and seen[-1] == "kd"
    assert "recipe kd (auto): every train video is labeled (0 unlabeled)" in capsys.readouterr().err
