"""Static QDQ INT8: calibrated on real clips, runs in ONNX Runtime, keeps a trained student's accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekd.errors import ConfigError

# The stated bound: on the 32 test clips, INT8 top-1 is within 0.1 (3 clips) of FP32 and the two
# agree on >= 90% of clips. A trained tiny3d loses far less than that to per-channel INT8.
MAX_ACCURACY_DROP = 0.1
MIN_AGREEMENT = 0.9


@pytest.fixture(scope="module")
def trained_export(trained_tiny3d):
    from edgekd.export.api import export_run

    return export_run(trained_tiny3d, parity_clips=16, eval_clips=64, noise_inputs=2)


def test_int8_accuracy_within_bound_of_fp32(trained_export):
    import onnx

    out = trained_export
    art = json.loads((out / "artifact.json").read_text())
    fp32, q = art["artifacts"][0], art["artifacts"][1]
    assert q["file"] == "student.int8.onnx" and q["precision"] == "int8" and q["format"] == "onnx"

    acc = q["accuracy"]
    assert acc["split"] == "test" and acc["clips"] == 32 and acc["labeled"]
    assert acc["fp32_top1"] >= 0.5, "the trained student should beat chance (0.25) clearly"
    assert abs(acc["delta"]) <= MAX_ACCURACY_DROP, acc
    assert acc["agreement_with_fp32"] >= MIN_AGREEMENT, acc
    assert fp32["accuracy"]["top1"] == acc["fp32_top1"]

    # INT8 parity vs PyTorch, with its looser bounds recorded next to the figures
    p = q["parity"]
    assert p["passed"] and p["tolerance"]["min_cosine"] < art["artifacts"][0]["parity"]["tolerance"]["min_cosine"]
    assert p["clips"]["cosine_min"] >= p["tolerance"]["min_cosine"]

    # really quantized: QDQ pairs with int8 per-channel weights, calibrated on train clips
    model = onnx.load(str(out / "student.int8.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") >= 4 and ops.count("DequantizeLinear") >= 8
    inits = {i.name: i for i in model.graph.initializer}
    weight_scales = [inits[n.input[1]] for n in model.graph.node
                     if n.op_type == "DequantizeLinear" and n.input[0] in inits
                     and inits[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert any(len(s.dims) == 1 and s.dims[0] > 1 for s in weight_scales), "per-channel weight scales expected"
    assert q["quantization"]["per_channel"] and q["calibration"]["split"] == "train"
    assert (out / "student.int8.onnx").stat().st_size < 0.5 * (out / "student.onnx").stat().st_size


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
