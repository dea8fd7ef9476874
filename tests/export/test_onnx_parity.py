"""Every registered student exports to one ONNX file that ONNX Runtime runs like PyTorch on real clips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekd.errors import ExportError
from edgekd.students import STUDENTS


@pytest.mark.parametrize("name", STUDENTS.names())
def test_every_student_exports_with_parity(name, tiny_synth, tmp_path, make_ckpt, small):
    import onnx

    from edgekd.export.api import export_run
    from edgekd.export.parity import TOLERANCES
    from edgekd.runtime.runners import OrtRunner, logits

    run = make_ckpt(tmp_path / "run", name, tiny_synth, frames=4, **small(name))  # 4 x 32 x 32 clips
    out = export_run(run, int8=False, parity_clips=4, noise_inputs=2)
    art = json.loads((out / "artifact.json").read_text())
    spec = art["data_spec"]

    # parity on the 4 real test clips of tiny_synth (decoded mp4s) and 2 noise inputs
    fp32 = art["artifacts"][0]
    assert fp32["file"] == "student.onnx" and fp32["parity"]["passed"], fp32["parity"]["failures"]
    clips = fp32["parity"]["clips"]
    assert clips["n"] == 4 and art["parity_inputs"]["clips"]["source"] == str(tiny_synth)
    assert clips["max_abs"] <= TOLERANCES["fp32"].atol + TOLERANCES["fp32"].rtol * clips["ref_max_abs"]
    assert clips["cosine_min"] > 0.9999 and clips["top1_agreement"] == 1.0

    # one self-contained file: weights inline, dynamic batch, spec in the metadata
    model = onnx.load(str(out / "student.onnx"))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert art["input"]["shape"] == ["batch", 3, spec["frames"], spec["size"], spec["size"]]
    assert art["opset"] == 17 and model.opset_import[0].version == 17
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["class_names"]) == spec["class_names"] and int(meta["frames"]) == spec["frames"]
    assert json.loads(meta["mean"]) == spec["mean"] and meta["student"] == name
    x = np.random.default_rng(1).standard_normal((3, 3, spec["frames"], spec["size"], spec["size"]), dtype=np.float32)
    with OrtRunner(out / "student.onnx", "cpu", "fp32") as runner:
        assert logits(runner, x).shape == (3, len(spec["class_names"]))


def test_static_batch_and_opset_choice(tiny_synth, tmp_path, make_ckpt):
    import onnx

    from edgekd.export.api import export_run
    from edgekd.runtime.artifact import read_metadata

    run = make_ckpt(tmp_path / "run", "tiny3d", tiny_synth, width=0.5)
    out = export_run(run, int8=False, opset=13, dynamic_batch=False, parity_clips=2, noise_inputs=1)
    model = onnx.load(str(out / "student.onnx"))
    assert model.opset_import[0].version == 13 and read_metadata(out / "student.onnx")["opset"] == "13"
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1  # static: one clip per run


def test_metadata_carries_the_runs_mean_and_std(tiny_synth, tmp_path, make_ckpt):
    """Read back from the file, each field equals the checkpoint's own spec (mean != std, channels differ)."""
    from edgekd.checkpoint import load_checkpoint
    from edgekd.export.api import export_run
    from edgekd.runtime.artifact import read_metadata, spec_from_metadata

    run = make_ckpt(tmp_path / "run", "tiny3d", tiny_synth, width=0.5,
                    spec_fields={"mean": (0.1, 0.2, 0.3), "std": (0.6, 0.5, 0.4)})
    out = export_run(run, int8=False, parity_clips=2, noise_inputs=1)
    saved = load_checkpoint(run / "checkpoint.pt")["data_spec"]
    meta = read_metadata(out / "student.onnx")
    assert json.loads(meta["mean"]) == list(saved["mean"]) == [0.1, 0.2, 0.3]
    assert json.loads(meta["std"]) == list(saved["std"]) == [0.6, 0.5, 0.4]
    assert spec_from_metadata(meta) == {k: list(v) if isinstance(v, tuple) else v for k, v in saved.items()}


class PerturbedExport:
    """export_onnx, then one Conv weight in the written file nudged: an ONNX that is not the model."""

    def __init__(self, real):
        self.real = real

    def __call__(self, *args, **kwargs):
        import onnx
        from onnx import numpy_helper

        info = self.real(*args, **kwargs)
        model = onnx.load(str(info.path))
        inits = {i.name: i for i in model.graph.initializer}
        w = inits[next(n.input[1] for n in model.graph.node if n.op_type == "Conv")]
        a = numpy_helper.to_array(w)
        a = a + 0.1 * a.std() * np.random.default_rng(0).standard_normal(a.shape).astype(a.dtype)
        w.CopyFrom(numpy_helper.from_array(a, w.name))
        onnx.save(model, str(info.path))
        return info


def test_parity_refuses_an_onnx_that_is_not_the_model(tiny_synth, tmp_path, make_ckpt, monkeypatch):
    """FP32 parity must run the file against PyTorch: a perturbed weight in the ONNX fails the export."""
    from edgekd.export import onnx_export
    from edgekd.export.api import export_run

    run = make_ckpt(tmp_path / "run", "tiny3d", tiny_synth, width=0.5)
    monkeypatch.setattr(onnx_export, "export_onnx", PerturbedExport(onnx_export.export_onnx))
    with pytest.raises(ExportError, match=r"student.onnx \(ONNX Runtime FP32\) does not match PyTorch"):
        export_run(run, int8=False, parity_clips=4, noise_inputs=2)
    assert not (run / "export").exists()


def test_unproducible_opset_is_a_clear_error(tiny_synth, tmp_path, make_ckpt):
    from edgekd.export.api import export_run

    run = make_ckpt(tmp_path / "run", "tiny3d", tiny_synth, width=0.5)
    with pytest.raises(ExportError, match="cannot produce opset 21") as e:
        export_run(run, opset=21)
    assert "--opset 17" in e.value.hint
    assert not (run / "export").exists()


def test_judge_fails_loudly_beyond_tolerance():
    from edgekd.export.parity import TOLERANCES, compare, judge

    rng = np.random.default_rng(0)
    ref = rng.standard_normal((8, 5)).astype(np.float32)
    ok = judge("same", ref, ref + 1e-6, ref[:2], ref[:2], TOLERANCES["fp32"])
    assert ok["passed"] and ok["clips"]["top1_agreement"] == 1.0
    with pytest.raises(ExportError, match="does not match PyTorch: clips: max \\|diff\\|"):
        judge("broken", ref, ref + 0.1, ref[:2], ref[:2], TOLERANCES["fp32"])
    flipped = ref[:, ::-1].copy()  # same magnitudes, different classes
    fig = compare(ref, flipped)
    assert fig["top1_agreement"] < 1.0 and fig["cosine_min"] < 0.99
    with pytest.raises(ExportError, match="top-1 agreement"):
        judge("int8", ref, flipped, ref[:0], ref[:0], TOLERANCES["int8"])
    with pytest.raises(ExportError, match="non-finite"):
        judge("nan", ref, np.full_like(ref, np.nan), ref[:0], ref[:0], TOLERANCES["int8"])


class ConstantRunner:
    """An 'artifact' that ignores its input: what a broken graph with folded-away inputs computes."""

    name, precision, providers_used, why = "constant", "fp32", ["none"], ""

    def __init__(self, row):
        self.row = row

    def run(self, batch):
        return np.repeat(self.row[None], len(batch), axis=0)


def test_parity_refuses_a_reference_that_does_not_vary(tiny_synth, tmp_path, make_ckpt):
    """MobileNet-TSM with untrained BatchNorm statistics: logits vary by ~1e-10 across inputs."""
    import torch

    from edgekd.export.api import export_run
    from edgekd.students import build_student

    torch.manual_seed(0)
    raw = build_student("mobilenet_v3_small_tsm", num_classes=4, frames=4, size=32).state_dict()
    run = make_ckpt(tmp_path / "run", "mobilenet_v3_small_tsm", tiny_synth, frames=4, state_dict=raw)
    with pytest.raises(ExportError, match="hardly vary across") as e:
        export_run(run, int8=False, parity_clips=4, noise_inputs=2)
    assert "BatchNorm" in e.value.hint and not (run / "export").exists()


def test_a_constant_output_fails_parity_against_a_calibrated_student(tiny_synth, tmp_path, make_ckpt):
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint
    from edgekd.export.parity import TOLERANCES, Comparator, noise_inputs
    from edgekd.runtime.evalset import build_evalset
    from edgekd.runtime.runners import TorchRunner

    run = make_ckpt(tmp_path / "run", "mobilenet_v3_small_tsm", tiny_synth, frames=4)  # BN calibrated
    model, spec = build_student_from_checkpoint(load_checkpoint(run / "checkpoint.pt"))
    clips = build_evalset(tiny_synth, spec).x
    with TorchRunner(model, "cpu", "fp32") as ref:
        cmp = Comparator(ref, clips, noise_inputs(spec, 2))
        assert cmp.judge(ref, "itself", TOLERANCES["fp32"])["passed"]
        with pytest.raises(ExportError, match="does not match PyTorch"):
            cmp.judge(ConstantRunner(cmp.ref_clips.mean(0)), "constant", TOLERANCES["fp32"])


def test_check_reference_thresholds():
    from edgekd.export.parity import check_reference

    rng = np.random.default_rng(0)
    check_reference(rng.standard_normal((6, 4)), "varies")
    with pytest.raises(ExportError, match="hardly vary"):
        check_reference(np.ones((6, 4)) + 3e-10 * rng.standard_normal((6, 4)), "near-constant")
    with pytest.raises(ExportError, match="hardly vary"):
        check_reference(rng.standard_normal((1, 4)), "one input")
