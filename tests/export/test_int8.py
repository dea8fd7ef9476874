"""The CPU INT8 variant (ORT's x86 format: uint8 activations, 7-bit weights): calibrated on real clips,
runs in ONNX Runtime's fused CPU kernels, keeps a trained student's predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekd.errors import ConfigError

MIN_AGREEMENT = 0.9


@pytest.fixture(scope="module")
def trained_export(deploy_export):
    return deploy_export


def test_cpu_variant_format_and_agreement(trained_export, tmp_path):
    import onnx
    from onnx import numpy_helper

    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.export.int8 import Int8Settings, quantize_int8
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.runners import OrtRunner, logits

    out = trained_export
    data = json.loads((out / "artifact.json").read_text())["parity_inputs"]["clips"]["source"]
    spec = default_data_spec(Manifest.load(data))
    calib, test = (build_evalset(data, spec, split=s, limit=32) for s in ("train", "test"))
    info = quantize_int8(out / "student.onnx", tmp_path / "cpu.onnx", calib.x, Int8Settings())
    assert info["activations"] == "uint8 asymmetric" and info["reduce_range"]
    model = onnx.load(str(tmp_path / "cpu.onnx"))
    inits = {i.name: i for i in model.graph.initializer}
    zps = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert zps and all(z.data_type == onnx.TensorProto.UINT8 for z in zps)
    weights = [numpy_helper.to_array(inits[n.input[0]]) for n in model.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert weights and max(int(np.abs(w).max()) for w in weights) <= 64, "7-bit weights (reduce_range)"
    with OrtRunner(out / "student.onnx", "cpu", "fp32") as a, OrtRunner(tmp_path / "cpu.onnx", "cpu", "int8") as b:
        ref, q = logits(a, test.x), logits(b, test.x)
    assert (ref.argmax(1) == q.argmax(1)).mean() >= MIN_AGREEMENT


def test_entropy_calibration_and_settings(trained_export, tmp_path):
    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.export.int8 import Int8Settings, quantize_int8
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.runners import OrtRunner, logits

    out = trained_export
    data = json.loads((out / "artifact.json").read_text())["parity_inputs"]["clips"]["source"]
    manifest = Manifest.load(data)
    spec = default_data_spec(manifest)
    clips = build_evalset(data, spec, split="train", limit=8)
    info = quantize_int8(out / "student.onnx", tmp_path / "e.onnx", clips.x,
                         Int8Settings(method="entropy", activation="int8", exclude_op_types=("Gemm",)))
    assert info["method"] == "entropy" and info["activations"] == "int8 symmetric" and info["excluded_nodes"]
    with OrtRunner(out / "student.onnx", "cpu", "fp32") as a, OrtRunner(tmp_path / "e.onnx", "cpu", "int8") as b:
        ref, q = logits(a, clips.x), logits(b, clips.x)
    assert (ref.argmax(1) == q.argmax(1)).mean() >= 0.75
    with pytest.raises(ConfigError, match="did you mean 'entropy'"):
        Int8Settings(method="entrpy").check()
    assert np.isfinite(q).all()
