"""A tiny trained-nothing run, exported by edgekd.export, benched once per session on two profiles.

    bench_run        runs/tiny/ (checkpoint.pt) + runs/tiny/export/ (student.onnx, student.int8.onnx,
                     artifact.json) for a tiny3d student on the tiny_synth dataset (4 classes, 32 px)
    offsite_profile  a GPU profile whose `match` names no real device: bench on this host must
                     report its latency as an ESTIMATE, and every GPU runtime as unavailable
    host_report / offsite_report   the report.json of `bench()` on "host" (this machine) / offsite_profile
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FAST = dict(iterations=5, warmup=1, batch_sizes=[1, 2], e2e_clips=3, threads=1)


def make_run(run_dir: Path, manifest_path: Path, seed: int = 0, width: float = 0.5) -> Path:
    import torch

    from edgekd.checkpoint import save_checkpoint
    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.students import build_student

    spec = default_data_spec(Manifest.load(manifest_path))
    kwargs = {"num_classes": spec.num_classes, "frames": spec.frames, "size": spec.size, "width": width}
    torch.manual_seed(seed)
    model = build_student("tiny3d", **kwargs).eval()
    run_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(run_dir / "checkpoint.pt", student_name="tiny3d", student_kwargs=kwargs,
                    state_dict=model.state_dict(), data_spec=spec, config={"data": {"path": str(manifest_path)}},
                    metrics={})
    return run_dir


def export(run_dir: Path, manifest_path: Path) -> Path:
    from edgekd.export.api import export_run
    from edgekd.export.parity import tolerances

    # Random weights judged on the 4 test clips: the INT8 gate (0.8) would fall on one flipped near-tie.
    # These fixtures test the bench, not INT8 quality (tests/export does), so allow two flips of four.
    return export_run(run_dir, data=manifest_path, parity_clips=4, eval_clips=4, noise_inputs=1,
                      tolerances=tolerances(int8_min_agreement=0.5))


@pytest.fixture(scope="session")
def bench_run(tmp_path_factory, tiny_synth) -> Path:
    import edgekd.students  # noqa: F401  (registers the families)

    run = make_run(tmp_path_factory.mktemp("runs") / "tiny", tiny_synth)
    export(run, tiny_synth)
    return run


@pytest.fixture(scope="session")
def offsite_profile(tmp_path_factory) -> Path:
    from edgekd.runtime.profiles import profile_text

    text = profile_text("x86-cpu")
    text = text.replace('kind = "cpu"', 'kind = "gpu"').replace('match = []',
                                                                'match = ["NoSuchAccelerator 9000"]')
    text = text.replace('runtimes = ["ort-cpu", "torch-cpu"]',
                        'runtimes = ["tensorrt", "ort-trt", "ort-cuda", "torch-cuda", "ort-cpu"]')
    text = text.replace('precisions = ["fp32", "int8"]', 'precisions = ["fp32", "fp16", "int8"]')
    text = text.replace('name = "x86-cpu"', 'name = "offsite-gpu"')
    path = tmp_path_factory.mktemp("profiles") / "offsite-gpu.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def host_bench(bench_run) -> Path:
    from edgekd.bench.api import bench

    return bench(bench_run, "host", **FAST)


@pytest.fixture(scope="session")
def offsite_bench(bench_run, offsite_profile, tmp_path_factory) -> Path:
    from edgekd.bench.api import bench

    return bench(bench_run / "export", offsite_profile, out_dir=tmp_path_factory.mktemp("offsite"), **FAST)


@pytest.fixture
def host_report(host_bench) -> dict:
    return json.loads((host_bench / "report.json").read_text())


@pytest.fixture
def offsite_report(offsite_bench) -> dict:
    return json.loads((offsite_bench / "report.json").read_text())


@pytest.fixture
def run_copy(bench_run, tmp_path) -> Path:
    """A private copy of the run a test may corrupt."""
    dst = tmp_path / "run"
    shutil.copytree(bench_run, dst, ignore=shutil.ignore_patterns("bench"))
    return dst
