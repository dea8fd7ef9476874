"""This machine as a profile: ISA flags from /proc/cpuinfo, peaks measured, never a nominal machine."""

import pytest

from edgekd.runtime.host import isa_flags


def test_isa_flags_from_cpuinfo_text():
    x86 = "processor : 0\nflags\t\t: fpu sse avx2 fma avx512f avx512_vnni amx_tile amx_int8\n"
    assert isa_flags(x86) == ["AVX2", "FMA", "AVX-512", "AVX-512 VNNI", "AMX", "AMX-INT8"]
    assert isa_flags("flags : fpu sse avx avx2 fma\n") == ["AVX2", "FMA"]  # no VNNI claimed where there is none
    assert isa_flags("Features : fp asimd asimddp\n") == ["NEON", "NEON dot product"]


def test_host_profile_is_measured_and_matches_no_shipped_profile():
    from edgekd.runtime.host import collect, device_names, matches
    from edgekd.runtime.profiles import load_all, load_profile

    p = load_profile("host")
    assert p.name == "host" and p.source == "measured on this host"
    assert all(v > 0 for v in p.peak_tflops.values()) and p.bandwidth_gbs > 0 and p.kernel_launch_us > 0
    # a CPU GEMM cannot beat its cores' FMA units: 2 FMA x 16 fp32 lanes x 2 FLOP x 5 GHz per core (AVX-512)
    assert p.peak_tflops["fp32"] * 1e12 < collect()["cpu_count"] * 2 * 16 * 2 * 5e9
    if p.kind == "cpu":
        names = device_names(collect())
        assert not [q.name for q in load_all() if q.match and matches(q.match, names)]
    assert load_profile("host") is p  # measured once per process


def test_profiles_host_command(capsys):
    from edgekd.cli.main import main

    assert main(["profiles", "host"]) == 0
    out = capsys.readouterr().out
    for key in ("cores", "ISA", "GPU", "peak fp32", "bandwidth", "per-kernel overhead"):
        assert key in out
    pytest.importorskip("onnxruntime")
    assert "GOP/s" in out  # int8 measured through ONNX Runtime's integer GEMM
