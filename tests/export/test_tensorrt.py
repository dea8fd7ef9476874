"""TensorRT: without it, `--trt` writes a build-on-target manifest; with it (marker `trt`), real engines."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

import numpy as np
import pytest

from edgekd.errors import ConfigError
from edgekd.export.tensorrt import tensorrt_status

TRT, TRT_REASON = tensorrt_status()
no_trt = pytest.mark.skipif(TRT is not None, reason="TensorRT is importable: the manifest-only path does not run")


def _trtexec_argv(script: str) -> list[str]:
    line = next(line for line in script.splitlines() if line.startswith('"$TRTEXEC"'))
    return shlex.split(line)[1:]


@no_trt
def test_implicit_int8_fallback_manifest_when_tensorrt_is_absent(tiny_synth, tmp_path, make_ckpt, orin_profile):
    """The TensorRT 8.x fallback: calibrate the FP32 ONNX on the target, labelled as such.
    (The explicit Q/DQ INT8 manifest is checked in test_qdq.py.)"""
    from edgekd.errors import ConfigError
    from edgekd.export.api import export_run

    run = make_ckpt(tmp_path / "run", "tiny3d", tiny_synth, width=0.5)
    with pytest.raises(ConfigError, match="compiles student.int8.onnx"):
        export_run(run, trt=True, precision="int8", profile=orin_profile, int8=False, parity_clips=2)
    out = export_run(run, trt=True, precision="int8", profile=orin_profile, int8=False, implicit_int8=True,
                     fp16_onnx=False, parity_clips=2, noise_inputs=1)
    art = json.loads((out / "artifact.json").read_text())
    entry = art["artifacts"][-1]
    assert entry["format"] == "tensorrt-build-manifest" and entry["built"] is False
    assert "not importable" in entry["reason"] and entry["engine"] == "student.int8.engine"
    assert not list(out.glob("*.engine"))  # nothing pretends to be an engine

    m = json.loads((out / "build_manifest.json").read_text())
    assert m["input"] == {"name": "video", "min": [1, 3, 8, 32, 32], "opt": [1, 3, 8, 32, 32], "max": [4, 3, 8, 32, 32]}
    assert m["target"]["tensorrt"] == "10.3" and m["target"]["jetpack"] == "6.2" and m["target"]["profile"] == "test-orin"
    assert "not portable" in m["portability"] and m["workspace_mb"] == 512

    script = (out / "build_engine.sh").read_text()
    argv = _trtexec_argv(script)
    assert argv == m["trtexec"]["argv"][1:]
    for flag in ("--onnx=student.onnx", "--saveEngine=student.int8.engine", "--minShapes=video:1x3x8x32x32",
                 "--optShapes=video:1x3x8x32x32", "--maxShapes=video:4x3x8x32x32", "--int8", "--fp16",
                 "--calib=calib.cache", "--memPoolSize=workspace:512", "--timingCacheFile=trt_timing.cache"):
        assert flag in argv, flag
    assert "python3 -m edgekd.export.tensorrt build_manifest.json --calibrate-only" in script
    assert "fallback for TensorRT 8.x" in script and m["quantization"]["mode"].startswith("implicit")
    assert os.access(out / "build_engine.sh", os.X_OK)
    subprocess.run(["bash", "-n", str(out / "build_engine.sh")], check=True)

    clips = np.load(out / "calib_clips.npy").astype(np.float32)  # the real train clips of tiny_synth (20 videos)
    assert clips.shape == (20, 3, 8, 32, 32) and np.isfinite(clips).all() and clips.std() > 0.1
    assert m["calibration"]["source"]["split"] == "train"


@no_trt
def test_dla_build_script_runs_the_exact_trtexec_command(tiny_synth, tmp_path, make_ckpt, orin_profile):
    from edgekd.export.api import export_run

    run = make_ckpt(tmp_path / "run", "mobilenet_v3_small_tsm", tiny_synth, width=0.5)
    out = export_run(run, trt=True, precision="fp16", profile=orin_profile, dla=True, dla_core=1, int8=False,
                     parity_clips=2, noise_inputs=1)
    m = json.loads((out / "build_manifest.json").read_text())
    assert m["input"]["min"] == m["input"]["opt"] == m["input"]["max"] == [1, 3, 8, 32, 32]  # DLA: static
    assert m["engine"] == "student.fp16.dla.engine" and m["calibration"] is None
    # `bash build_engine.sh` on the target = trtexec with exactly the manifest's arguments
    record = tmp_path / "argv.txt"
    fake = tmp_path / "trtexec"
    fake.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {shlex.quote(str(record))}\n')
    fake.chmod(0o755)
    subprocess.run(["bash", str(out / "build_engine.sh")], check=True, env={**os.environ, "TRTEXEC": str(fake)})
    argv = record.read_text().splitlines()
    assert argv == m["trtexec"]["argv"][1:]
    assert "--useDLACore=1" in argv and "--allowGPUFallback" in argv and "--fp16" in argv and "--int8" not in argv


def test_requests_are_validated(tiny_synth, tmp_path, make_ckpt, make_profile):
    from edgekd.runtime.profiles import load_profile
    from edgekd.export.api import export_run
    from edgekd.export.tensorrt import make_request

    no_dla = load_profile(make_profile(tmp_path, "l4", "test-l4"))
    with pytest.raises(ConfigError, match="has no DLA cores"):
        make_request(tmp_path, onnx="s.onnx", precision="fp16", input_name="video", input_dims=(3, 8, 32, 32),
                     profile=no_dla, dla=True)
    with pytest.raises(ConfigError, match="--fp16-layers only applies to INT8"):
        make_request(tmp_path, onnx="s.onnx", precision="fp16", input_name="video", input_dims=(3, 8, 32, 32),
                     fp16_layers=("auto",))
    run = make_ckpt(tmp_path / "run", "tiny3d", tiny_synth, width=0.5)
    with pytest.raises(ConfigError, match="has no TensorRT"):
        export_run(run, trt=True, profile="x86-cpu")
    assert not (run / "export").exists()  # rejected before any work


def test_fp16_layer_selection(tmp_path):
    from edgekd.data.spec import DataSpec
    from edgekd.export.onnx_export import export_onnx
    from edgekd.export.tensorrt import fp16_node_names
    from edgekd.students import build_student

    path = export_onnx(build_student("tiny3d", num_classes=3, frames=4, size=32, width=0.5),
                       DataSpec(frames=4, size=32, class_names=("a", "b", "c")), tmp_path / "s.onnx",
                       student_name="tiny3d").path
    auto = fp16_node_names(path, ("auto",))
    assert auto[0].endswith("Conv") and any(n.endswith("Gemm") for n in auto)
    assert sum("Reduce" in n for n in auto) == 2  # spatial max + temporal mean pooling
    assert fp16_node_names(path, ("Gemm",)) == [n for n in auto if n.endswith("Gemm")]


# -- real TensorRT (GPU machines with the tensorrt package) ---------------------------------------

def _need_gpu():
    import torch

    if TRT is None:
        pytest.skip(TRT_REASON)
    if not torch.cuda.is_available():
        pytest.skip("TensorRT is importable but no CUDA GPU is visible")


@pytest.mark.trt
@pytest.mark.gpu
def test_fp16_engine_builds_with_parity_and_reuses_timing_cache(tiny_synth, tmp_path, make_ckpt, make_profile,
                                                                monkeypatch):
    _need_gpu()
    from edgekd.export.api import export_run

    monkeypatch.setenv("EDGEKD_HOME", str(tmp_path / "home"))
    prof = make_profile(tmp_path, "l4", "test-gpu", batch_sizes="batch_sizes = [1, 2, 4]", workspace_mb="workspace_mb = 256")
    run = make_ckpt(tmp_path / "run", "tiny3d", tiny_synth, width=0.5)
    out = export_run(run, trt=True, precision="fp16", profile=prof, int8=False, parity_clips=4)
    art = json.loads((out / "artifact.json").read_text())
    eng = art["artifacts"][-1]
    assert eng["format"] == "tensorrt" and eng["parity"]["passed"] and (out / "student.fp16.engine").is_file()
    meta = json.loads((out / "student.fp16.engine.json").read_text())
    assert meta["input"]["max"][0] == 4 and meta["tensorrt"] == TRT.__version__
    cache = list((tmp_path / "home" / "tensorrt").glob("timing-*.cache"))
    assert len(cache) == 1 and cache[0].stat().st_size > 0
    export_run(run, trt=True, precision="fp16", profile=prof, int8=False, parity_clips=4, force=True)
    assert len(list((tmp_path / "home" / "tensorrt").glob("timing-*.cache"))) == 1  # the same file, reused


@pytest.mark.trt
@pytest.mark.gpu
def test_int8_engines_explicit_from_qdq_and_implicit_fallback(tiny_synth, tmp_path, make_ckpt, make_profile,
                                                              monkeypatch):
    _need_gpu()
    from edgekd.export.api import export_run

    monkeypatch.setenv("EDGEKD_HOME", str(tmp_path / "home"))
    prof = make_profile(tmp_path, "l4", "test-gpu", batch_sizes="batch_sizes = [1, 2]", workspace_mb="workspace_mb = 256")
    run = make_ckpt(tmp_path / "run", "tiny3d", tiny_synth, width=0.5)
    out = export_run(run, trt=True, precision="int8", profile=prof, parity_clips=4, cpu_int8="never")
    meta = json.loads((out / "student.int8.engine.json").read_text())
    assert meta["quantization"] == "explicit (Q/DQ)" and not (out / "calib.cache").exists()
    assert json.loads((out / "artifact.json").read_text())["artifacts"][-1]["parity"]["passed"]
    out = export_run(run, trt=True, precision="int8", profile=prof, fp16_layers=("auto",), int8=False,
                     implicit_int8=True, parity_clips=4, force=True)
    meta = json.loads((out / "student.int8.engine.json").read_text())
    assert (out / "calib.cache").stat().st_size > 0 and meta["fp16_layers"] and meta["quantization"] == "implicit"
    assert json.loads((out / "artifact.json").read_text())["artifacts"][-1]["parity"]["passed"]
