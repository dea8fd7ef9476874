"""Fixtures for the export tests: checkpoints of real students, a trained tiny3d, target profiles.

    make_checkpoint(run_dir, name, manifest, **kwargs)  a random-weight student on that dataset's spec
    small_kwargs(name)         the smallest options a family takes (fewer channels/blocks: fast export)
    trained_tiny3d             runs/trained/ with a tiny3d trained 150 steps on a 4-class synthetic set
                               (64 train / 32 test videos), so INT8 accuracy means something
    profile_file(text edits)   write a hardware profile TOML derived from a shipped one
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest


def small_kwargs(name: str) -> dict:
    """Half width / one block per stage where the family has such options."""
    from edgekd.students import STUDENTS

    params = inspect.signature(STUDENTS.get(name)).parameters
    kw = {}
    if "width" in params:
        kw["width"] = 0.5
    if "depth" in params:
        kw["depth"] = 1 if isinstance(params["depth"].default, int) else 0.25
    return kw


def calibrate_batchnorm(model, x) -> None:
    """BatchNorm running statistics from forward passes in train mode over real clips `x`.

    Untrained statistics (mean 0, var 1) on random weights shrink MobileNet-TSM's logits until they
    vary by ~3e-10 across inputs; parity on such a model cannot tell a graph from a constant."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the passes
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.from_numpy(x))
    model.eval()


def make_checkpoint(run_dir: Path, name: str, manifest_path: Path, state_dict=None, seed: int = 0,
                    frames: int | None = None, spec_fields: dict | None = None, **kwargs) -> Path:
    """A random-weight `name` student for `manifest_path`'s classes (clip length `frames` if given,
    other DataSpec fields from `spec_fields`), BatchNorm statistics calibrated on the dataset's train
    clips so its logits vary with the input."""
    import dataclasses

    import torch

    from edgekd.checkpoint import save_checkpoint
    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.students import build_student

    spec = default_data_spec(Manifest.load(manifest_path))
    if frames:
        spec = dataclasses.replace(spec, frames=frames)
    spec = dataclasses.replace(spec, **(spec_fields or {}))
    torch.manual_seed(seed)
    model = build_student(name, num_classes=spec.num_classes, frames=spec.frames, size=spec.size, **kwargs)
    if state_dict is None:
        from edgekd.runtime.evalset import build_evalset

        calibrate_batchnorm(model, build_evalset(manifest_path, spec, split="train", limit=8).x)
    save_checkpoint(Path(run_dir) / "checkpoint.pt", student_name=name, student_kwargs=model.config,
                    state_dict=state_dict if state_dict is not None else model.state_dict(), data_spec=spec,
                    config={"data": {"path": str(manifest_path)}}, metrics={})
    return Path(run_dir)


@pytest.fixture(scope="session")
def trained_tiny3d(tmp_path_factory) -> Path:
    """tiny3d trained for 150 Adam steps on cached clips (~5 CPU seconds); 64 train / 32 test videos."""
    import torch

    from edgekd.checkpoint import save_checkpoint
    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.data.synthetic import generate
    from edgekd.runtime.evalset import build_evalset
    from edgekd.students import build_student

    root = tmp_path_factory.mktemp("trained")
    manifest_path = generate(root / "data", classes=4, videos_per_class=24, frames=16, size=32, seed=1,
                             test_fraction=1 / 3, workers=1)
    manifest = Manifest.load(manifest_path)
    spec = default_data_spec(manifest)
    train = build_evalset(manifest_path, spec, split="train")
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.labels)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convs: one thread is faster than two fighting over a busy machine
    try:
        torch.manual_seed(0)
        model = build_student("tiny3d", num_classes=spec.num_classes, frames=spec.frames, size=spec.size, width=0.5)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(150):
            idx = torch.randint(0, len(x), (16,))
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    run = root / "runs" / "trained"
    save_checkpoint(run / "checkpoint.pt", student_name="tiny3d", student_kwargs=model.config,
                    state_dict=model.eval().state_dict(), data_spec=spec,
                    config={"data": {"path": str(manifest_path)}}, metrics={"train_loss": float(loss.detach())})
    return run


def profile_file(tmp_path: Path, base: str, name: str, **edits: str) -> Path:
    """A profile TOML = shipped profile `base` with whole lines replaced: edits={"dla_cores": "dla_cores = 2"}."""
    from importlib import resources

    text = (resources.files("edgekd.runtime") / "profiles" / f"{base}.toml").read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        if key == "name":
            line = f'name = "{name}"'
        elif key in edits:
            line = edits[key]
        lines.append(line)
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def orin_profile(tmp_path) -> Path:
    """A Jetson profile with 2 DLA cores, TensorRT 10.3, batch sizes 1/2/4, 512 MB workspace."""
    return profile_file(tmp_path, "agx-orin-64gb", "test-orin", dla_cores="dla_cores = 2",
                        tensorrt='tensorrt = "10.3"', batch_sizes="batch_sizes = [1, 2, 4]",
                        workspace_mb="workspace_mb = 512")


@pytest.fixture
def make_ckpt():
    """The make_checkpoint helper, as a fixture (conftest modules are not importable by name)."""
    return make_checkpoint


@pytest.fixture
def small():
    return small_kwargs


@pytest.fixture
def make_profile():
    return profile_file


@pytest.fixture(scope="session")
def deploy_export(trained_tiny3d, tmp_path_factory) -> Path:
    """The trained tiny3d exported with every deploy output: Q/DQ INT8, FP16, DeepStream, Triton, INT8 build manifest."""
    from edgekd.export.api import export_run

    return export_run(trained_tiny3d, tmp_path_factory.mktemp("deploy") / "export", parity_clips=16, noise_inputs=2,
                      deepstream=True, triton=True, trt=True, precision="int8", max_batch=4)


@pytest.fixture(scope="session")
def tiny_spec_onnx(tiny_synth, tmp_path_factory):
    """(student.onnx of a random tiny3d at half width, its DataSpec): a graph to quantize or inspect."""
    import torch

    from edgekd.data.manifest import Manifest, default_data_spec
    from edgekd.export.onnx_export import export_onnx
    from edgekd.students import build_student

    spec = default_data_spec(Manifest.load(tiny_synth))
    torch.manual_seed(0)
    model = build_student("tiny3d", num_classes=spec.num_classes, frames=spec.frames, size=spec.size, width=0.5)
    path = tmp_path_factory.mktemp("tiny_onnx") / "student.onnx"
    return export_onnx(model, spec, path, student_name="tiny3d").path, spec
