"""The Triton model repository: every config.pbtxt parsed by Triton's own model-config protobuf and
checked against the ONNX it serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# ONNX TensorProto element type -> Triton DataType name
ONNX_TO_TRITON = {1: "TYPE_FP32", 10: "TYPE_FP16", 3: "TYPE_INT8", 7: "TYPE_INT64"}


def _parse(path: Path):
    pb = pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="pip install 'edgekd[test]' (tritonclient)")
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), pb.ModelConfig()), pb


def _io(model_path: Path):
    import onnx

    g = onnx.load(str(model_path)).graph

    def one(t):
        return t.name, t.type.tensor_type.elem_type, [d.dim_value or d.dim_param for d in t.type.tensor_type.shape.dim]

    return [one(t) for t in g.input], [one(t) for t in g.output]


def test_every_config_parses_and_matches_its_onnx(deploy_export):
    art = json.loads((deploy_export / "artifact.json").read_text())
    spec, max_batch = art["data_spec"], art["deploy"]["bundles"]["triton"]["max_batch_size"]
    root = deploy_export / "triton"
    configs = sorted(root.glob("*/*/config.pbtxt"))
    assert {p.parent.name for p in configs} == {"tiny3d_onnx", "tiny3d_onnx_fp16", "tiny3d_trt"}
    for path in configs:
        cfg, pb = _parse(path)
        folder = path.parent
        assert cfg.name == folder.name and cfg.max_batch_size == max_batch == 4
        assert cfg.dynamic_batching.max_queue_delay_microseconds > 0
        assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4]
        assert [(g.kind, g.count) for g in cfg.instance_group] == [(pb.ModelInstanceGroup.KIND_GPU, 1)]
        (out,) = cfg.output
        labels = (folder / out.label_filename).read_text().splitlines()
        assert labels == spec["class_names"] and list(out.dims) == [len(labels)]
        if cfg.platform == "tensorrt_plan":  # built on the target: waits outside the served repository
            assert folder.parent.name == "on_target" and (folder / "1").is_dir()
            assert not (folder / "1" / "model.plan").exists()
            onnx_file = deploy_export / "student.onnx"
        else:
            assert cfg.platform == "onnxruntime_onnx" and folder.parent.name == "model_repository"
            onnx_file = folder / "1" / "model.onnx"
            src = "student.fp16.onnx" if folder.name.endswith("_fp16") else "student.onnx"
            assert onnx_file.read_bytes() == (deploy_export / src).read_bytes()
        inputs, outputs = _io(onnx_file)
        for t, (name, elem, dims) in zip(list(cfg.input) + list(cfg.output), inputs + outputs):
            assert t.name == name and pb.DataType.Name(t.data_type) == ONNX_TO_TRITON[elem]
            assert dims[0] == "batch" and list(t.dims) == dims[1:], "dims leave out the (dynamic) batch axis"
        assert list(cfg.input[0].dims) == [3, spec["frames"], spec["size"], spec["size"]]


def test_plan_script_covers_the_batch_range_and_int8_uses_the_qdq_file(deploy_export):
    script = (deploy_export / "triton" / "build_plan.sh").read_text()
    art = json.loads((deploy_export / "artifact.json").read_text())
    s = art["data_spec"]["size"]
    assert f"--minShapes=video:1x3x{art['data_spec']['frames']}x{s}x{s}" in script
    assert f"--maxShapes=video:4x3x{art['data_spec']['frames']}x{s}x{s}" in script
    assert "ONNX=../student.int8.onnx" in script and "--calib" not in script
    assert f"--optShapes=video:4x3x{art['data_spec']['frames']}x{s}x{s}" in script  # preferred_batch_size 2, 4
    assert "cp on_target/tiny3d_trt/config.pbtxt" in script and "mv on_target" not in script


def test_plan_script_runs_twice(deploy_export, tmp_path):
    """build_plan.sh with a stand-in trtexec (writes the --saveEngine file): run twice, the second run
    finds everything it needs and the repository holds the plan model both times."""
    import shutil
    import subprocess

    root = tmp_path / "export"
    shutil.copytree(deploy_export, root)
    fake = tmp_path / "trtexec"
    fake.write_text('#!/usr/bin/env bash\nfor a in "$@"; do case "$a" in --saveEngine=*) echo plan > "${a#--saveEngine=}";; esac; done\n')
    fake.chmod(0o755)
    for precision in ("fp16", "int8"):
        r = subprocess.run(["bash", str(root / "triton" / "build_plan.sh")], capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin", "TRTEXEC": str(fake), "PRECISION": precision})
        assert r.returncode == 0, r.stderr
        model = root / "triton" / "model_repository" / "tiny3d_trt"
        assert (model / "1" / "model.plan").read_text() == "plan\n" and (model / "config.pbtxt").is_file()
        assert not (model / "1" / "model.plan.partial").exists()


def test_render_is_parsed_back_field_for_field():
    """The renderer alone (what the streaming export extends): extra blocks survive the protobuf round trip."""
    from edgekd.export.triton import ModelConfig, Tensor, render

    cfg = ModelConfig(name="m", platform="onnxruntime_onnx", max_batch_size=0,
                      inputs=(Tensor("x", (1, 3, 8, 8)),), outputs=(Tensor("y", (1, 5), "TYPE_FP16"),),
                      instance_kind="KIND_CPU", instance_count=2,
                      extra_blocks=("sequence_batching { max_sequence_idle_microseconds: 5000000 }",))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "config.pbtxt"
        p.write_text(render(cfg))
        parsed, pb = _parse(p)
    assert not parsed.HasField("dynamic_batching"), "no dynamic batching without a batch axis"
    assert parsed.sequence_batching.max_sequence_idle_microseconds == 5_000_000
    assert list(parsed.output[0].dims) == [1, 5] and parsed.output[0].data_type == pb.TYPE_FP16
    assert parsed.instance_group[0].kind == pb.ModelInstanceGroup.KIND_CPU and parsed.instance_group[0].count == 2
