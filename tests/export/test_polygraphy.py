"""NVIDIA's Polygraphy on the exported files (CPU, ONNX Runtime): `check lint` passes on every file, and
its comparator holds FP16 and the Q/DQ INT8 to FP32 on real clips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("polygraphy")

FILES = ("student.onnx", "student.fp16.onnx", "student.int8.onnx")
# median |Δ logit| per batch of 4 real test clips (the trained tiny3d: measured FP16 0.0004-0.0005,
# INT8 0.024-0.044)
MEDIAN_ATOL = {"student.fp16.onnx": 2e-3, "student.int8.onnx": 0.06}


@pytest.mark.parametrize("name", FILES)
def test_polygraphy_lint(deploy_export, name, tmp_path):
    cli = Path(sys.executable).with_name("polygraphy")
    r = subprocess.run([str(cli), "check", "lint", str(deploy_export / name), "-o", str(tmp_path / "lint.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "PASSED" in r.stdout + r.stderr, (r.stdout + r.stderr)[-2000:]


def _runner(path: Path, name: str):
    """OnnxrtRunner on a CPU session running the graph as written (TensorRT's arithmetic for Q/DQ)."""
    import onnxruntime as ort
    from polygraphy.backend.onnxrt import OnnxrtRunner

    def session():
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.intra_op_num_threads = 1
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    return OnnxrtRunner(session, name=name)


def test_polygraphy_compares_fp16_and_int8_with_fp32(deploy_export):
    import json

    from polygraphy.comparator import Comparator, SimpleCompareFunc

    from edgekd.export.onnx_export import load_student
    from edgekd.runtime.evalset import build_evalset

    art = json.loads((deploy_export / "artifact.json").read_text())
    _, _, spec = load_student((deploy_export / art["checkpoint"]["path"]).resolve())
    ev = build_evalset(art["eval"]["source"] if art["eval"]["source"] != "embedded synthetic dataset" else None,
                       spec, split="test", limit=16)
    batches = [{"video": ev.x[i:i + 4]} for i in range(0, len(ev), 4)]
    runners = [_runner(deploy_export / f, f) for f in FILES]
    results = Comparator.run(runners, data_loader=batches)
    for name in FILES[1:]:
        ok = Comparator.compare_accuracy(results, comparisons=[(0, FILES.index(name))],
                                         compare_func=SimpleCompareFunc(atol=MEDIAN_ATOL[name], rtol=0.0,
                                                                         check_error_stat="median"))
        assert bool(ok), f"{name}: median |Δ logit| above {MEDIAN_ATOL[name]}"
    # the comparator is not vacuous: INT8 is not within FP16's bound
    strict = Comparator.compare_accuracy(results, comparisons=[(0, FILES.index("student.int8.onnx"))],
                                         compare_func=SimpleCompareFunc(atol=MEDIAN_ATOL["student.fp16.onnx"],
                                                                         rtol=0.0, check_error_stat="median"))
    assert not bool(strict)
