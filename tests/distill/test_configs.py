"""The shipped paper configs load, validate and say what the papers say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import edgekd
from edgekd.distill.config import DistillConfig, load_config

CONFIGS = sorted((Path(edgekd.__file__).parent / "configs").glob("*.toml"))


def test_configs_exist_for_the_papers_label_fractions():
    names = {p.name for p in CONFIGS}
    for pct in (1, 5, 10):
        assert f"ucf101_split1_feature-pseudo_{pct}pct.toml" in names
        assert f"ucf101_split1_timebalance_{pct}pct.toml" in names
    for pct in (40, 50, 60):
        assert f"hmdb51_split1_timebalance_{pct}pct.toml" in names
    assert "hmdb51_split1_feature-pseudo_50pct.toml" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates_and_round_trips(path, tmp_path):
    cfg = load_config(path)
    assert f"{cfg.data.labeled * 100:g}pct" in path.name and cfg.student.name == "r3d_18"
    if cfg.recipe.name == "feature+pseudo":  # VL Sec. 4.3
        assert cfg.optim.lr == 3e-5 and cfg.data.frames == 4
        assert cfg.recipe.pseudo.threshold == (0.2 if path.name.startswith("ucf101") else 0.4)
    else:  # TimeBalance Sec. 4.2, Supp. B.2
        assert cfg.recipe.name == "timebalance" and cfg.optim.name == "adam" and cfg.optim.schedule == "plateau"
        assert (cfg.data.frames, cfg.data.size, cfg.optim.warmup_epochs, cfg.train.epochs) == (8, 224, 10, 150)
    out = tmp_path / "resolved.toml"
    out.write_text(cfg.to_toml())
    assert load_config(out) == cfg
    assert DistillConfig.from_dict(cfg.to_dict()) == cfg


def test_python_dash_m_edgekd():
    out = subprocess.run([sys.executable, "-m", "edgekd", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("edgekd ")
