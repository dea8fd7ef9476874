import importlib.util

import numpy as np
import pytest

from edgekd.runtime.runners import OrtRunner, Runner, RunnerUnavailable, TensorRTRunner, TorchRunner

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def _ort_providers():
    import onnxruntime as ort

    return ort.get_available_providers()


def test_ort_cpu_reports_the_provider_that_ran(bench_run):
    r = OrtRunner(bench_run / "export" / "student.onnx", "cpu", "fp32", threads=1)
    assert isinstance(r, Runner)
    r.load()
    assert r.providers_used == ["CPUExecutionProvider"]
    x = np.zeros((2, *r.input_shape[1:]), np.float32)
    out = r.run(x)
    assert out.shape == (2, 4) and out.dtype == np.float32


@pytest.mark.skipif("CUDAExecutionProvider" in _ort_providers(), reason="this onnxruntime has the CUDA provider")
def test_missing_ort_cuda_is_a_reason(bench_run):
    r = OrtRunner(bench_run / "export" / "student.onnx", "cuda", "fp32")
    with pytest.raises(RunnerUnavailable, match="no CUDAExecutionProvider") as e:
        r.load()
    assert "onnxruntime-gpu" in e.value.hint


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here")
def test_missing_tensorrt_is_a_reason(bench_run):
    r = TensorRTRunner(None, bench_run / "export" / "student.onnx", "fp16")
    with pytest.raises(RunnerUnavailable, match="tensorrt Python package is not installed"):
        r.load()


def test_torch_cuda_without_a_gpu_and_torch_int8():
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RunnerUnavailable, match="torch.cuda.is_available"):
            TorchRunner(torch.nn.Identity(), "cuda", "fp32").load()
    with pytest.raises(RunnerUnavailable, match="no int8"):
        TorchRunner(torch.nn.Identity(), "cpu", "int8").load()


def test_missing_file_is_a_reason():
    r = OrtRunner(None, "cpu", "fp16", missing_reason="the export has no fp16 ONNX")
    with pytest.raises(RunnerUnavailable, match="no fp16 ONNX"):
        r.load()


def test_unavailable_runtimes_become_rows_with_reasons(offsite_report):
    rows = {(r["runtime"], r["precision"]): r for r in offsite_report["rows"]}
    # every (runtime, precision) of the profile is a row, whether it ran or not
    assert len(rows) == 5 * 3
    if not HAS_TRT:
        assert rows[("tensorrt", "fp16")]["status"] == "unavailable"
        assert "tensorrt" in rows[("tensorrt", "fp16")]["reason"]
    if "CUDAExecutionProvider" not in _ort_providers():
        assert "CUDAExecutionProvider" in rows[("ort-cuda", "fp32")]["reason"]
        assert "TensorrtExecutionProvider" in rows[("ort-trt", "int8")]["reason"]
    assert "fp16 ONNX" in rows[("ort-cpu", "fp16")]["reason"]
    ok = rows[("ort-cpu", "fp32")]
    assert ok["status"] == "ok" and ok["providers"] == ["CPUExecutionProvider"] and ok["reason"] is None
    for r in rows.values():
        assert r["status"] in ("ok", "unavailable", "failed")
        assert (r["status"] == "ok") == (r["reason"] is None)
