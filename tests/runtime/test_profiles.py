import re

import pytest

from edgekd.runtime.profiles import KINDS, PRECISIONS, RUNTIMES, Profile, load_profile, names, profile_text
from edgekd.errors import ConfigError

EXPECTED = {"orin-nano-8gb-15w", "orin-nano-8gb-super", "orin-nx-16gb", "agx-orin-64gb", "xavier-nx", "t4", "l4",
            "a100", "h100", "rtx-4090", "x86-cpu"}


def test_every_target_of_the_issue_ships():
    assert EXPECTED <= set(names())


@pytest.mark.parametrize("name", names())
def test_shipped_profile_loads_and_validates(name):
    p = load_profile(name)
    assert isinstance(p, Profile) and p.name == name and p.kind in KINDS
    assert set(p.peak_tflops) == set(PRECISIONS) and all(v > 0 for v in p.peak_tflops.values())
    # int8 never slower than fp16, fp16 never slower than fp32 (dense figures)
    assert p.peak_tflops["int8"] >= p.peak_tflops["fp16"] >= p.peak_tflops["fp32"]
    assert p.bandwidth_gbs > 0 and p.memory_gb > 0 and (p.match or name == "x86-cpu")  # x86-cpu: a nominal machine
    assert set(p.runtimes) <= set(RUNTIMES) and set(p.precisions) <= set(PRECISIONS)
    assert all(b >= 1 for b in p.batch_sizes) and p.iterations >= 1 and p.warmup >= 0
    # the workload: cameras x fps, one prediction every stride_frames; budget = one clip's share at batch 1
    assert p.cameras >= 1 and p.stride_frames >= 1 and p.kernel_launch_us >= 0
    assert p.budget_ms == pytest.approx(1000 * p.stride_frames / p.fps / p.cameras)
    if p.kind == "cpu":
        assert p.tensorrt_version is None and p.jetpack is None
    else:
        assert p.tensorrt_version and p.runtimes[0] == "tensorrt"
    assert (p.jetpack is not None) == (p.kind == "jetson")


@pytest.mark.parametrize("name", names())
def test_every_peak_and_bandwidth_figure_has_a_source_comment(name):
    lines = profile_text(name).splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^(fp32|fp16|int8|bandwidth_gbs)\s*=", line):
            assert lines[i - 1].startswith("#"), f"{name}: no source comment above {line!r}"
    text = profile_text(name).lower()
    if "sparse" in text or "sparsity" in text:
        # a vendor figure quoted with sparsity is halved, or the dense figure is quoted beside it
        assert "sparse figure halved" in text or "dense" in text or "no sparsity" in text


def _write(tmp_path, text):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


def test_user_profile_by_path(tmp_path):
    path = _write(tmp_path, profile_text("t4").replace('name = "t4"', 'name = "my-t4"'))
    p = load_profile(path)
    assert p.name == "my-t4" and p.source == str(path)


def test_wrong_type_names_file_and_key(tmp_path):
    path = _write(tmp_path, profile_text("l4").replace("iterations = 300", 'iterations = "many"'))
    with pytest.raises(ConfigError, match=r"mine\.toml: bench\.iterations must be an integer"):
        load_profile(path)
    path = _write(tmp_path, profile_text("l4").replace("fp32 = 30.3", "fp32 = true"))
    with pytest.raises(ConfigError, match=r"mine\.toml: peak\.fp32 must be a number"):
        load_profile(path)


def test_unknown_key_suggests(tmp_path):
    path = _write(tmp_path, profile_text("l4").replace("warmup = 50", "warmpu = 50\nwarmup = 50"))
    with pytest.raises(ConfigError) as e:
        load_profile(path)
    assert "mine.toml" in e.value.message and "bench.warmpu" in e.value.message
    assert "warmup" in e.value.hint


def test_missing_key_and_table(tmp_path):
    path = _write(tmp_path, profile_text("l4").replace("size_gb = 24.0\n", ""))
    with pytest.raises(ConfigError, match=r"mine\.toml: missing key 'memory\.size_gb'"):
        load_profile(path)
    text = profile_text("l4")
    path = _write(tmp_path, text[:text.index("[budget]")])
    with pytest.raises(ConfigError, match=r"missing table \[budget\]"):
        load_profile(path)


def test_bad_values(tmp_path):
    path = _write(tmp_path, profile_text("l4").replace('"ort-cuda"', '"ort-cudaa"'))
    with pytest.raises(ConfigError, match="unknown runtime 'ort-cudaa'") as e:
        load_profile(path)
    assert "ort-cuda" in e.value.hint
    path = _write(tmp_path, profile_text("l4").replace('kind = "gpu"', 'kind = "tpu"'))
    with pytest.raises(ConfigError, match="kind"):
        load_profile(path)


def test_unknown_name_suggests():
    with pytest.raises(ConfigError, match="unknown profile 'orin-nano'") as e:
        load_profile("orin-nano")
    assert "orin-nano-8gb-15w" in e.value.hint


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_profile("no/such/profile.toml")


def test_cli_lists_profiles(capsys):
    from edgekd.cli.main import main

    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in EXPECTED) and "30 fps" in out
    assert main(["profiles", "h10"]) != 0
    assert "h100" in capsys.readouterr().err


def test_two_profiles_never_share_a_device_string():
    """Each profile's match patterns are tried against every other profile's device string and patterns."""
    from edgekd.runtime.host import matches

    profiles = [load_profile(n) for n in names()]
    # real device strings the patterns are meant for (GPU names; Jetson model + nvpmodel mode)
    devices = {"orin-nano-8gb-15w": "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit 15W",
               "orin-nano-8gb-super": "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super MAXN_SUPER",
               "agx-orin-64gb": "NVIDIA Jetson AGX Orin Developer Kit MAXN", "orin-nx-16gb": "NVIDIA Orin NX Developer Kit 25W",
               "xavier-nx": "NVIDIA Jetson Xavier NX Developer Kit MODE_15W_6CORE", "t4": "Tesla T4", "l4": "NVIDIA L4",
               "a100": "NVIDIA A100-SXM4-80GB", "h100": "NVIDIA H100 80GB HBM3", "rtx-4090": "NVIDIA GeForce RTX 4090"}
    for p in profiles:
        owners = [q.name for q in profiles if q.match and matches(q.match, [devices.get(p.name, p.device)])]
        assert owners == ([p.name] if p.match else []), (p.name, owners)
    assert not matches(load_profile("l4").match, ["NVIDIA L40S"])  # whole words: L4 is not L40S
    assert not matches(load_profile("x86-cpu").match, ["x86_64", "AMD EPYC 7B13"])  # nominal: no host is it


def test_jetson_device_string_carries_the_power_mode():
    from edgekd.runtime.host import device_names

    env = {"gpu": None, "jetson": {"model": "NVIDIA Jetson Orin Nano Developer Kit",
                                   "nvpmodel": "NV Power Mode: MAXN_SUPER\n2"}}
    assert device_names(env) == ["NVIDIA Jetson Orin Nano Developer Kit MAXN_SUPER"]
    assert matches_profile("orin-nano-8gb-super", env) and not matches_profile("orin-nano-8gb-15w", env)


def matches_profile(name, env):
    from edgekd.runtime.host import device_names, matches

    return matches(load_profile(name).match, device_names(env))
