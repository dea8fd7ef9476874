"""Bad input fails with a typed error and a hint BEFORE any training step (no run folder appears)."""

from __future__ import annotations

import pytest
import torch

from edgekd.cli.main import main
from edgekd.distill.config import load_config
from edgekd.distill.train import distill
from edgekd.errors import CheckpointError, ConfigError, TeacherError


def no_run_written(cfg) -> bool:
    from pathlib import Path

    runs = Path(cfg.run.dir)
    return not runs.exists() or not any(runs.glob("*/checkpoint.pt"))


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1"])
def test_labeled_fraction_out_of_range(overrides, value):
    with pytest.raises(ConfigError, match="out of range") as e:
        load_config(None, overrides + [f"data.labeled={value}"])
    assert "fraction" in e.value.hint


def test_unknown_keys_and_recipes_suggest_the_right_name(overrides, tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides + ["optim.lrr=1e-3"])
    assert "'lr'" in e.value.hint
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides + ["recipe.name=timebalanse"])
    assert "timebalance" in e.value.hint
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochz = 3\n")
    with pytest.raises(ConfigError, match="bad.toml") as e:
        load_config(bad)
    assert "epochs" in e.value.hint


def test_recipe_without_its_teacher(overrides):
    cfg = load_config(None, overrides + ["recipe.name=pseudo", "teacher.vl=none"])
    with pytest.raises(ConfigError, match="needs a teacher for role 'vl'") as e:
        distill(cfg)
    assert "teacher.vl" in e.value.hint and no_run_written(cfg)


def test_teacher_without_head_or_with_other_classes(overrides, tiny_spec, teacher_factory):
    cfg = load_config(None, overrides + ["recipe.name=pseudo"])
    with pytest.raises(TeacherError, match="no classifier head"):
        distill(cfg, teachers={"vl": teacher_factory(tiny_spec, 0, head=False)})
    other = teacher_factory(tiny_spec, 0)
    other.attach_head(torch.nn.Linear(other.embed_dim, 3), 3)
    with pytest.raises(TeacherError, match="predicts 3 classes, the dataset has 4"):
        distill(cfg, teachers={"vl": other})
    assert no_run_written(cfg)


def test_width_mismatch_without_projector(overrides, tiny_spec, teacher_factory):
    cfg = load_config(None, overrides + ["recipe.name=feature", "recipe.feature.projector=none"])
    with pytest.raises(ConfigError, match="student width 32 != teacher width 64"):
        distill(cfg, teachers={"vl": teacher_factory(tiny_spec, 0, width=0.5)})
    assert no_run_written(cfg)


def test_resume_from_another_student_or_recipe(overrides, capsys):
    cfg = load_config(None, overrides + ["recipe.name=supervised", "train.epochs=1", "run.name=a"])
    run = distill(cfg)
    other = load_config(None, overrides + ["recipe.name=supervised", "student.name=mobilenet_v3_small_tsm"])
    with pytest.raises(CheckpointError, match="trained with student 'tiny3d'"):
        distill(other, resume=run)
    with pytest.raises(CheckpointError, match="recipe 'supervised'"):
        distill(load_config(None, overrides + ["recipe.name=kd"]), resume=run)
    # the CLI: one red line naming the conflicting key, exit code 2, nothing trained
    assert main(["distill", "--resume", str(run), "--student", "r3d_18"]) == 2
    err = capsys.readouterr().err
    assert "student.name: 'tiny3d' -> 'r3d_18'" in err and "hint" in err
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_tensorboard_missing_is_a_clear_error(overrides):
    try:
        import tensorboard  # noqa: F401
        pytest.skip("tensorboard is installed")
    except ImportError:
        pass
    cfg = load_config(None, overrides + ["recipe.name=supervised", "run.tensorboard=true"])
    with pytest.raises(ConfigError, match="tensorboard"):
        distill(cfg)
    assert no_run_written(cfg)


@pytest.mark.parametrize("name, match", [("gpu0", "unknown device 'gpu0'"), ("cuda:0", "CUDA is not available")])
def test_bad_device_names_fail_with_the_accepted_names(name, match, monkeypatch):
    from edgekd.distill.dist import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=match) as e:
        resolve_device(name)
    assert "--device" in e.value.hint or "cuda:N" in e.value.hint
    assert resolve_device("auto") == torch.device("cpu")
