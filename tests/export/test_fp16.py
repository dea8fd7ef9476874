"""student.fp16.onnx: FP16 inside, FP32 I/O, parity with PyTorch on real clips (ONNX Runtime CPU)."""

from __future__ import annotations

import json

import numpy as np


def test_fp16_onnx_is_half_inside_float_at_the_edges_and_matches(deploy_export):
    import onnx

    model = onnx.load(str(deploy_export / "student.fp16.onnx"))
    inits = list(model.graph.initializer)
    assert inits and all(i.data_type == onnx.TensorProto.FLOAT16 for i in inits if len(i.dims) > 1), "weights in FP16"
    for t in list(model.graph.input) + list(model.graph.output):
        assert t.type.tensor_type.elem_type == onnx.TensorProto.FLOAT, "I/O stay FP32 (keep_io_types)"
    onnx.checker.check_model(model, full_check=True)

    art = json.loads((deploy_export / "artifact.json").read_text())
    h = next(a for a in art["artifacts"] if a["file"] == "student.fp16.onnx")
    assert h["precision"] == "fp16" and h["conversion"]["keep_io_types"] and h["parity"]["passed"]
    c = h["parity"]["clips"]
    # really FP16 (not a copy of the FP32 graph): logits move, but only by FP16 rounding
    assert 1e-5 < c["max_abs"] <= h["parity"]["tolerance"]["atol"] + h["parity"]["tolerance"]["rtol"] * c["ref_max_abs"]
    assert c["cosine_min"] >= 0.999 and h["accuracy"]["agreement_with_fp32"] >= 0.95
    assert art["deploy"]["runtimes"]["onnxruntime-cuda fp16"] == "student.fp16.onnx"


def test_fp16_parity_catches_a_broken_conversion(deploy_export, tmp_path):
    """The FP16 parity gate goes red when the converted graph is wrong (one weight zeroed)."""
    import onnx
    from onnx import numpy_helper

    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.export.parity import TOLERANCES, Comparator, noise_inputs
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.runners import OrtRunner

    model = onnx.load(str(deploy_export / "student.fp16.onnx"))
    w = next(i for i in model.graph.initializer if len(i.dims) == 5)
    w.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(w)), w.name))
    onnx.save(model, str(tmp_path / "broken.onnx"))
    data = json.loads((deploy_export / "artifact.json").read_text())["parity_inputs"]["clips"]["source"]
    spec = default_data_spec(Manifest.load(data))
    clips = build_evalset(data, spec, split="test", limit=8)
    with OrtRunner(deploy_export / "student.onnx", "cpu", "fp32") as ref, \
            OrtRunner(tmp_path / "broken.onnx", "cpu", "fp16") as bad:
        cmp = Comparator(ref, clips.x, noise_inputs(spec, 2))
        verdict = cmp.judge(bad, "broken fp16", TOLERANCES["fp16"], raise_on_fail=False)
    assert not verdict["passed"]


def test_fp16_file_that_fails_parity_is_dropped_not_fatal(tiny_synth, tmp_path, make_ckpt):
    from edgekd.export.api import export_run
    from edgekd.export.parity import Tolerance

    run = make_ckpt(tmp_path / "run", "tiny3d", tiny_synth, width=0.5)
    impossible = Tolerance(atol=0.0, rtol=0.0, min_cosine=1.01, min_top1=1.0, gate_noise=True)
    out = export_run(run, int8=False, triton=True, parity_clips=4, noise_inputs=1, tolerances={"fp16": impossible})
    art = json.loads((out / "artifact.json").read_text())
    rec = art["deploy"]["fp16_onnx"]
    assert rec["kept"] is False and rec["parity"]["failures"] and not (out / "student.fp16.onnx").exists()
    assert [a["file"] for a in art["artifacts"]] == ["student.onnx"]
    assert not any("fp16" in m for m in art["deploy"]["bundles"]["triton"]["models"])
