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
    # export writes student.fp16.onnx (FP32 I/O) now: ORT CPU runs it
    assert rows[("ort-cpu", "fp16")]["status"] == "ok"
    ok = rows[("ort-cpu", "fp32")]
    assert ok["status"] == "ok" and ok["providers"] == ["CPUExecutionProvider"] and ok["reason"] is None
    for r in rows.values():
        assert r["status"] in ("ok", "unavailable", "failed")
        assert (r["status"] == "ok") == (r["reason"] is None)


def _clips(bench_run, n=4):
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint
    from edgekd.runtime.evalset import build_evalset

    model, spec = build_student_from_checkpoint(load_checkpoint(bench_run / "checkpoint.pt"))
    return model, build_evalset(spec=spec, data=load_checkpoint(bench_run / "checkpoint.pt")["config"]["data"]["path"],
                                limit=n).x


@pytest.mark.gpu
def test_torch_cuda_matches_cpu_and_reports_the_device(bench_run):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU is visible")
    from edgekd.runtime.runners import logits

    model, x = _clips(bench_run)
    with TorchRunner(model, "cpu", "fp32") as cpu, TorchRunner(model, "cuda", "fp32") as gpu:
        assert gpu.provider.startswith("cuda:0")
        np.testing.assert_allclose(logits(gpu, x), logits(cpu, x), rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
def test_ort_cuda_runs_on_the_gpu(bench_run):
    if "CUDAExecutionProvider" not in _ort_providers():
        pytest.skip("this onnxruntime has no CUDAExecutionProvider")
    from edgekd.runtime.runners import logits

    _, x = _clips(bench_run)
    onnx = bench_run / "export" / "student.onnx"
    with OrtRunner(onnx, "cpu", "fp32") as cpu, OrtRunner(onnx, "cuda", "fp32") as gpu:
        assert gpu.provider == "CUDAExecutionProvider"
        np.testing.assert_allclose(logits(gpu, x), logits(cpu, x), rtol=1e-3, atol=1e-4)


@pytest.mark.trt
@pytest.mark.gpu
def test_tensorrt_runner_builds_from_onnx_and_matches_ort(bench_run, tmp_path, monkeypatch):
    import torch

    if not HAS_TRT or not torch.cuda.is_available():
        pytest.skip("needs the tensorrt package and a CUDA GPU")
    from edgekd.runtime.runners import logits

    monkeypatch.setenv("EDGEKD_HOME", str(tmp_path / "home"))
    _, x = _clips(bench_run, 3)  # 3 clips at max batch 2: the last batch is smaller
    onnx = bench_run / "export" / "student.onnx"
    with OrtRunner(onnx, "cpu", "fp32") as ref, TensorRTRunner(None, onnx, "fp32", max_batch=2) as trt:
        assert trt.provider.startswith("TensorRT")
        np.testing.assert_allclose(logits(trt, x, 2), logits(ref, x), rtol=1e-2, atol=1e-3)
