"""The TensorRT/DLA readiness check reads the ONNX graph against the support tables, without TensorRT."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekd.errors import ConfigError


@pytest.fixture(scope="module")
def onnx_of(tmp_path_factory):
    """name -> student.onnx of a small random-weight student (8 frames x 32 px), exported once."""
    from edgekd.data.spec import DataSpec
    from edgekd.export.onnx_export import export_onnx
    from edgekd.students import build_student

    root = tmp_path_factory.mktemp("readiness")
    spec = DataSpec(frames=8, size=32, class_names=("a", "b", "c"))
    cache: dict[str, Path] = {}

    def get(name: str, **kw) -> Path:
        if name not in cache:
            model = build_student(name, num_classes=3, frames=8, size=32, **kw)
            cache[name] = export_onnx(model, spec, root / f"{name}.onnx", student_name=name).path
        return cache[name]

    return get


def test_conv3d_student_is_flagged_for_dla(onnx_of, orin_profile):
    from edgekd.export.readiness import check_readiness

    r = check_readiness(onnx_of("tiny3d", width=0.5), orin_profile)
    assert r.trt_ok and r.tensorrt == "TensorRT 10.3"  # the GPU builds it ...
    assert r.dla_verdict == "fail" and not r.dla_ok  # ... the DLA cannot run a single 3D conv
    assert any("3D" in p for p in r.dla_problems)
    assert any("mobilenet_v3_small_tsm" in s for s in r.suggestions)
    conv = next(row for row in r.rows() if row["op"] == "Conv")
    assert conv["gpu"] == conv["count"] and conv["dla"] == 0


def test_temporal_shift_2d_student_passes_dla(onnx_of, orin_profile):
    from edgekd.export.readiness import check_readiness

    r = check_readiness(onnx_of("mobilenet_v3_small_tsm", width=0.5), orin_profile)
    assert r.trt_ok and r.dla_ok and r.dla_verdict in ("dla", "dla+gpu")
    conv = next(row for row in r.rows() if row["op"] == "Conv")
    assert conv["dla"] == conv["count"], "every 2D convolution runs on DLA"
    # hard-sigmoid/swish are not DLA activations: reported as GPU fallbacks, not failures
    assert any(row["op"] in ("HardSwish", "HardSigmoid") and row["gpu"] for row in r.rows())
    assert any("fall back to the GPU" in s for s in r.suggestions)


def test_unsupported_op_and_opset_range(tmp_path, orin_profile, make_profile):
    import onnx
    from onnx import TensorProto, helper

    from edgekd.export.readiness import check_readiness, render, verdict_lines

    # Det has no TensorRT importer; opset 17 is beyond TensorRT 8.2's 13
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="det")], "g", [x], [y])
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))

    r = check_readiness(path, orin_profile)
    assert not r.trt_ok and any(p.startswith("Det:") for p in r.trt_problems)
    old = make_profile(tmp_path, "xavier-nx", "old-trt", tensorrt='tensorrt = "8.2.1"')
    r_old = check_readiness(path, old)
    assert any("opset 17 is outside TensorRT 8.2.1's range 1-13" in p for p in r_old.trt_problems)
    assert any("--opset 13" in s for s in r_old.suggestions)
    assert "will not build" in " ".join(verdict_lines(r_old)) and render(r_old).row_count == 1


def test_cpu_profile_has_no_tensorrt(onnx_of):
    from edgekd.export.readiness import check_readiness

    with pytest.raises(ConfigError, match="has no TensorRT"):
        check_readiness(onnx_of("tiny3d", width=0.5), "x86-cpu")


def test_cli_check_trt(tiny_synth, tmp_path, make_ckpt, orin_profile, capsys):
    from edgekd.cli.main import main

    run = make_ckpt(tmp_path / "run", "tiny3d", tiny_synth, width=0.5)
    # no export yet: the check exports the ONNX to a temporary folder itself
    assert main(["export", str(run), "--check-trt", "--profile", str(orin_profile)]) == 0
    out = capsys.readouterr().out
    assert "TensorRT: builds" in out and "DLA: not usable" in out and "mobilenet_v3_small_tsm" in out
    assert not (run / "export").exists()
    # asking for DLA makes a DLA-incapable graph an error
    assert main(["export", str(run), "--check-trt", "--dla", "--profile", str(orin_profile)]) == 2
    assert "cannot use the DLA" in capsys.readouterr().err
    assert main(["export", str(run), "--check-trt"]) == 2
    assert "--check-trt needs --profile" in capsys.readouterr().err
