"""INT8 by TensorRT's explicit-quantization rules: the graph's structure and a trained student's accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest

# The stated bound: with TensorRT's arithmetic, INT8 top-1 on the 32 test clips is within 0.1 (3 clips)
# of FP32 and the two agree on >= 90% of clips.
MAX_ACCURACY_DROP = 0.1
MIN_AGREEMENT = 0.9


def _qdq_facts(model):
    """(zero points: [(node, dtype, values)], conv weight DQs: [(axis, scale dims, weight dims)], int32 DQ inputs)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    zps, conv_w, int32 = [], [], []
    consumers = {i: n for n in model.graph.node for i in n.input}
    for n in model.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        zp = inits[n.input[2]]
        zps.append((n.name, zp.data_type, numpy_helper.to_array(zp)))
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            w = inits[n.input[0]]
            int32.append(w.data_type == 6)  # TensorProto.INT32: a quantized bias
            c = consumers.get(n.output[0])
            if c is not None and c.op_type == "Conv" and c.input[1] == n.output[0]:
                axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
                conv_w.append((axis, list(inits[n.input[1]].dims), list(w.dims)))
    return zps, conv_w, int32


def test_int8_graph_follows_tensorrt_rules(deploy_export):
    import onnx

    from edgekd.export.qdq import check_trt_rules

    model = onnx.load(str(deploy_export / "student.int8.onnx"))
    zps, conv_w, int32 = _qdq_facts(model)
    assert len(zps) >= 8
    assert all(dt == onnx.TensorProto.INT8 and not v.any() for _, dt, v in zps), "int8 symmetric: zero point 0"
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(conv_w) == len(convs) >= 3, "every Conv weight goes through a DequantizeLinear"
    for axis, scale_dims, w_dims in conv_w:
        assert axis == 0 and scale_dims == [w_dims[0]] and w_dims[0] > 1, "per-output-channel weight scales"
    assert not any(int32), "biases stay float"
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    for c in convs:  # Q/DQ at the activation input: where TensorRT fuses it into the INT8 convolution
        assert producers[c.input[0]] == "DequantizeLinear"
    assert check_trt_rules(model) == []


def test_rule_checker_catches_asymmetric_and_uint8_zero_points(deploy_export):
    import onnx
    from onnx import numpy_helper

    from edgekd.export.qdq import check_trt_rules

    model = onnx.load(str(deploy_export / "student.int8.onnx"))
    inits = {i.name: i for i in model.graph.initializer}
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    zp = inits[q.input[2]]
    zp.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), zp.name))
    assert any("non-zero zero point" in p for p in check_trt_rules(model))
    zp.CopyFrom(numpy_helper.from_array(np.array(3, np.uint8), zp.name))
    assert any("not INT8" in p for p in check_trt_rules(model))


@pytest.mark.parametrize("per_channel", [True, False])
def test_rule_checker_flags_per_tensor_conv_weights(tiny_spec_onnx, tmp_path, per_channel):
    """A real symmetric-int8 Q/DQ graph (ORT's quantizer) with per-tensor weight scales: every Conv
    weight is flagged, and only those; the per-channel graph of the same model has none flagged."""
    import onnx
    from onnx import numpy_helper

    from edgekd.export.int8 import Int8Settings, quantize_int8
    from edgekd.export.parity import noise_inputs
    from edgekd.export.qdq import check_trt_rules

    path, spec = tiny_spec_onnx
    settings = Int8Settings(method="minmax", per_channel=per_channel, activation="int8", reduce_range=False)
    quantize_int8(path, tmp_path / "q.onnx", noise_inputs(spec, 4), settings)
    model = onnx.load(str(tmp_path / "q.onnx"))
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    weight_dqs = [producers[c.input[1]] for c in model.graph.node if c.op_type == "Conv"]
    assert len(weight_dqs) >= 3 and all(d.op_type == "DequantizeLinear" for d in weight_dqs)
    per_tensor = {d.name for d in weight_dqs if inits[d.input[1]].dims == []}  # a scalar scale
    assert per_tensor == (set() if per_channel else {d.name for d in weight_dqs})
    rule = ": Conv weight quantized per tensor"

    def flagged():
        return {p.partition(rule)[0] for p in check_trt_rules(model) if rule in p}

    assert flagged() == per_tensor
    if not per_channel:  # the same scales written as 1-element vectors: still one scale per weight
        for d in weight_dqs:
            for name in d.input[1:]:
                inits[name].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[name]).reshape(1), name))
        assert flagged() == per_tensor


def test_int8_accuracy_with_tensorrt_arithmetic(deploy_export):
    art = json.loads((deploy_export / "artifact.json").read_text())
    q = next(a for a in art["artifacts"] if a["file"] == "student.int8.onnx")
    acc = q["accuracy"]
    assert acc["split"] == "test" and acc["clips"] == 32 and acc["labeled"]
    assert acc["fp32_top1"] >= 0.5, "the trained student should beat chance (0.25) clearly"
    assert abs(acc["delta"]) <= MAX_ACCURACY_DROP and acc["agreement_with_fp32"] >= MIN_AGREEMENT, acc
    assert "graph optimizations off" in q["measured_with"] and q["parity"]["passed"]
    assert art["artifacts"][0]["accuracy"]["top1"] == acc["fp32_top1"]
    assert q["quantization"]["rules"] == "tensorrt-explicit" and q["calibration"]["split"] == "train"
    # the calibration method was chosen by measurement on the calibration clips (never the test split)
    sel = q["quantization"]["method_selection"]
    score = {m: (f["agreement_with_fp32"], f["cosine_mean"]) for m, f in sel["candidates"].items()}
    assert set(score) == {"minmax", "percentile"} and sel["chosen"] == max(score, key=score.get) == q["quantization"]["method"]
    assert "tensorrt" in q["runtimes"] and "accuracy" in q["onnxruntime_cpu_kernels"]
    # the engine is compiled from this very file, explicitly
    m = json.loads((deploy_export / "build_manifest.json").read_text())
    assert m["onnx"] == "student.int8.onnx" and m["quantization"]["mode"] == "explicit"
    assert "--int8" in m["trtexec"]["argv"] and not any(a.startswith("--calib") for a in m["trtexec"]["argv"])
    assert not (deploy_export / "calib_clips.npy").exists()
    assert art["deploy"]["runtimes"]["tensorrt int8"].startswith("student.int8.onnx")


def test_cpu_int8_variant_kept_only_when_faster(deploy_export):
    from edgekd.export.variants import CPU_INT8, CPU_KEEP_MARGIN

    art = json.loads((deploy_export / "artifact.json").read_text())
    choice = art["deploy"]["cpu_int8"]
    ms = choice["latency_ms"]
    faster = ms["int8-cpu"] < (1 - CPU_KEEP_MARGIN) * min(ms["fp32"], ms["int8"])
    assert choice["kept"] == (faster and choice["policy"] == "auto") or choice["policy"] == "always"
    assert (deploy_export / CPU_INT8).exists() == choice["kept"]
    assert art["deploy"]["runtimes"]["onnxruntime-cpu"] in {a["file"] for a in art["artifacts"]}


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_calibration_keeps_rules(deploy_export, tmp_path, method):
    import onnx

    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.export.qdq import TRT_EMULATION, QdqSettings, check_trt_rules, quantize_qdq
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.runners import OrtRunner, logits

    data = json.loads((deploy_export / "artifact.json").read_text())["parity_inputs"]["clips"]["source"]
    spec = default_data_spec(Manifest.load(data))
    clips = build_evalset(data, spec, split="train", limit=8)
    info = quantize_qdq(deploy_export / "student.onnx", tmp_path / "q.onnx", clips.x, QdqSettings(method=method))
    assert info["method"] == method and check_trt_rules(onnx.load(str(tmp_path / "q.onnx"))) == []
    with OrtRunner(deploy_export / "student.onnx", "cpu", "fp32") as a, \
            OrtRunner(tmp_path / "q.onnx", "cpu", "int8", graph_optimization=TRT_EMULATION) as b:
        ref, q = logits(a, clips.x), logits(b, clips.x)
    assert np.isfinite(q).all() and (ref.argmax(1) == q.argmax(1)).mean() >= 0.75


def _qdq_pair(model, tensor: str, out: str | None = None, scale: float = 0.05):
    """Insert QuantizeLinear -> DequantizeLinear on `tensor` (int8, zero point 0); returns the DQ output name."""
    out = out or f"{tensor}.dq"
    from onnx import helper, numpy_helper

    g = model.graph
    g.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), f"{tensor}.s"),
                          numpy_helper.from_array(np.array(0, np.int8), f"{tensor}.z")])
    g.node.extend([helper.make_node("QuantizeLinear", [tensor, f"{tensor}.s", f"{tensor}.z"], [f"{tensor}.q"], name=f"{tensor}.Q"),
                   helper.make_node("DequantizeLinear", [f"{tensor}.q", f"{tensor}.s", f"{tensor}.z"], [out],
                                    name=f"{tensor}.DQ")])
    return out


def test_qdq_only_on_quantized_layer_inputs(deploy_export):
    """No pair on the graph output or between a Conv and its ReLU: each DQ'd activation feeds a Conv."""
    import onnx

    model = onnx.load(str(deploy_export / "student.int8.onnx"))
    producers = {o: n for n in model.graph.node for o in n.output}
    out = model.graph.output[0].name
    assert producers[out].op_type == "Gemm", "logits come straight from the classifier, no Q/DQ"
    for n in model.graph.node:
        if n.op_type == "Relu":
            assert producers[n.input[0]].op_type == "Conv", "Conv -> ReLU with no pair between (TensorRT fuses them)"
        if n.op_type == "DequantizeLinear" and n.input[0] in producers:  # an activation pair
            readers = [c.op_type for c in model.graph.node if n.output[0] in c.input]
            assert readers and set(readers) <= {"Conv", "MatMul", "Add"}, readers


def test_rule_checker_refuses_qdq_on_logits_and_before_relu(deploy_export):
    import onnx

    from edgekd.export.qdq import check_trt_rules

    model = onnx.load(str(deploy_export / "student.int8.onnx"))
    g = model.graph
    gemm = next(n for n in g.node if n.op_type == "Gemm")
    gemm.output[0] = "raw_logits"
    _qdq_pair(model, "raw_logits", out="logits")  # the pair now ends on the graph output
    problems = check_trt_rules(model)
    assert any("logits" in p and "graph output" in p for p in problems), problems

    model = onnx.load(str(deploy_export / "student.int8.onnx"))
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.input[0] = _qdq_pair(model, relu.input[0])
    assert any("ReLU" in p or "Relu" in p for p in check_trt_rules(model))


def test_check_trt_accepts_dequantized_weights(deploy_export, orin_profile):
    """DQ-fed int8 weights are the explicit-quantization pattern `trtexec --int8` builds; run-time weights are not."""
    import onnx

    from edgekd.export.readiness import check_readiness

    r = check_readiness(deploy_export / "student.int8.onnx", orin_profile, "int8")
    assert r.trt_ok, r.trt_problems
    model = onnx.load(str(deploy_export / "student.int8.onnx"))
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    w_dq = next(n for n in model.graph.node if n.output[0] == convs[1].input[1])
    w_dq.input[0] = _qdq_pair(model, convs[0].output[0])  # weights computed from an activation
    onnx.save(model, str(orin_profile.parent / "bad.onnx"))
    r = check_readiness(orin_profile.parent / "bad.onnx", orin_profile, "int8")
    assert not r.trt_ok and any("weights W must be an initializer" in p for p in r.trt_problems)
