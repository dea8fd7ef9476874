import json

import numpy as np
import pytest

from edgekd.errors import BenchError, DataError
from edgekd.runtime.evalset import build_evalset, check_input_shape, class_mapping
from edgekd.runtime.metrics import agreement, classification
from edgekd.runtime.runners import OrtRunner, TorchRunner, logits


def test_ort_accuracy_equals_pytorch_within_parity(bench_run, tiny_synth):
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint
    from edgekd.export.parity import TOLERANCES

    model, spec = build_student_from_checkpoint(load_checkpoint(bench_run))
    ev = build_evalset(tiny_synth, spec)
    assert len(ev) == 4 and ev.split == "test"
    with TorchRunner(model, "cpu", "fp32", threads=1) as torch_runner, \
            OrtRunner(bench_run / "export" / "student.onnx", "cpu", "fp32", threads=1) as ort_runner:
        ref = logits(torch_runner, ev.x, batch_size=2)
        out = logits(ort_runner, ev.x, batch_size=1)
    tol = TOLERANCES["fp32"]
    assert np.abs(ref - out).max() <= tol.atol + tol.rtol * np.abs(ref).max()
    a_ref, a_ort = classification(ref, ev.labels), classification(out, ev.labels)
    assert agreement(ref, out) == 1.0
    assert a_ort["top1"] == a_ref["top1"] and a_ort["top5"] == a_ref["top5"]


def test_bench_rows_agree_with_pytorch(host_report):
    rows = {(r["runtime"], r["precision"]): r for r in host_report["rows"]}
    fp32_ort, fp32_torch = rows[("ort-cpu", "fp32")]["accuracy"], rows[("torch-cpu", "fp32")]["accuracy"]
    assert fp32_ort["agreement"] == 1.0 and fp32_torch["agreement"] == 1.0
    assert fp32_ort["top1"] == fp32_torch["top1"] and fp32_ort["n"] == 4
    int8 = rows[("ort-cpu", "int8")]["accuracy"]
    assert int8["n"] == 4 and 0 <= int8["agreement"] <= 1
    assert host_report["eval"]["clips"] == 4


def test_unknown_classes_are_an_error():
    assert class_mapping(["b", "a"], ["a", "b", "c"], "ds").tolist() == [1, 0]
    with pytest.raises(DataError, match="class\\(es\\) the model does not know: 'zebra'"):
        class_mapping(["a", "zebra"], ["a", "b"], "ds")


def test_dataset_with_foreign_classes_fails_bench(run_copy, tmp_path):
    from edgekd.bench.api import bench
    from edgekd.data.synthetic import generate

    other = generate(tmp_path / "other", classes=["grow", "shrink"], videos_per_class=2, frames=16, size=32)
    with pytest.raises(DataError, match="does not know"):
        bench(run_copy, "x86-cpu", eval_data=other, iterations=1, warmup=0)


def test_input_shape_mismatch_is_an_error(run_copy):
    from edgekd.bench.api import bench
    from edgekd.data.spec import DataSpec

    spec = DataSpec(frames=8, size=32, class_names=("a",))
    check_input_shape(["batch", 3, 8, 32, 32], spec, "x")
    with pytest.raises(BenchError, match="expects input"):
        check_input_shape([1, 3, 16, 32, 32], spec, "x")
    art = run_copy / "export" / "artifact.json"
    data = json.loads(art.read_text())
    data["input"]["shape"] = ["batch", 3, 16, 64, 64]
    art.write_text(json.dumps(data))
    with pytest.raises(BenchError, match="expects input \\['batch', 3, 16, 64, 64\\]") as e:
        bench(run_copy, "x86-cpu", iterations=1, warmup=0)
    assert "re-export" in e.value.hint


def test_same_clips_give_the_same_number_in_artifact_and_report(bench_run, host_report, tiny_synth):
    """artifact.json (export) and report.json (bench) evaluate the same clips; both equal a plain argmax count."""
    art = json.loads((bench_run / "export" / "artifact.json").read_text())
    assert art["eval"]["fingerprint"] == host_report["eval"]["fingerprint"]
    rows = {(r["runtime"], r["precision"]): r for r in host_report["rows"]}
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint

    _, spec = build_student_from_checkpoint(load_checkpoint(bench_run / "checkpoint.pt"))
    ev = build_evalset(tiny_synth, spec)
    for entry, prec in ((art["artifacts"][0], "fp32"), (art["artifacts"][1], "int8")):
        with OrtRunner(bench_run / "export" / entry["file"], "cpu", prec) as r:
            hits = [int(np.argmax(r.run(ev.x[i:i + 1])[0]) == ev.labels[i]) for i in range(len(ev))]
        assert entry["accuracy"]["top1"] == rows[("ort-cpu", prec)]["accuracy"]["top1"] == sum(hits) / len(hits)
