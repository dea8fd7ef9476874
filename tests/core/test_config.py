import dataclasses

import pytest

from edgekd.config import dumps_toml, merge, parse_overrides, resolve, to_dict
from edgekd.errors import ConfigError


@dataclasses.dataclass
class Optim:
    lr: float = 1e-3
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.9, 0.999])


@dataclasses.dataclass
class Cfg:
    epochs: int = 3
    name: str = "run"
    amp: bool = False
    teacher: str | None = None
    optim: Optim = dataclasses.field(default_factory=Optim)


def test_toml_then_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('epochs = 5\n[optim]\nlr = 1\n')
    cfg = resolve(Cfg(), f, ["optim.lr=3e-4", "amp=true", "teacher=vl"])
    assert cfg.epochs == 5 and cfg.optim.lr == pytest.approx(3e-4) and cfg.amp is True
    assert cfg.teacher == "vl" and isinstance(cfg.optim.lr, float)


def test_unknown_key_suggests():
    with pytest.raises(ConfigError) as e:
        merge(Cfg(), {"epoch": 2})
    assert "epoch" in e.value.message and "epochs" in e.value.hint


def test_wrong_type_names_key():
    with pytest.raises(ConfigError, match="optim.lr"):
        merge(Cfg(), parse_overrides(["optim.lr=fast"]), where="--set")


def test_toml_round_trip(tmp_path):
    cfg = resolve(Cfg(), None, ["optim.lr=0.5", "name=a \"quoted\" name"])
    f = tmp_path / "resolved.toml"
    f.write_text(dumps_toml(to_dict(cfg)))
    assert resolve(Cfg(), f) == cfg
