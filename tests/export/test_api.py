"""export_run / `edgekd export`: artifact.json contents, --force semantics, and clear errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from edgekd.errors import CheckpointError, ExportError

FAST = dict(int8=False, parity_clips=2, noise_inputs=1)


@pytest.fixture
def run(tiny_synth, tmp_path, make_ckpt) -> Path:
    return make_ckpt(tmp_path / "runs" / "tiny", "tiny3d", tiny_synth, width=0.5)


@pytest.fixture
def trained_run(trained_tiny3d, tmp_path) -> Path:
    """A copy of the trained tiny3d's run: 32 test clips, predictions that mean something."""
    run = tmp_path / "runs" / "trained"
    run.mkdir(parents=True)
    shutil.copy(trained_tiny3d / "checkpoint.pt", run / "checkpoint.pt")
    return run


def test_cli_export_writes_artifact_and_table(trained_run, capsys):
    """INT8 passes the default gate, top-1 agreement >= 0.8: on 16 clips that allows 3 flips, so no single
    near tie decides it (this student has one: a top-2 logit gap of 0.08 against INT8's logit error of up
    to 0.11), while a miscalibrated INT8 file (calibration clips scaled by 0.1 or 0.3) agrees on 6 of 16."""
    from edgekd.cli.main import main
    from edgekd.io import sha256_file

    run = trained_run
    assert main(["export", str(run), "--parity-clips", "16", "--eval-clips", "16", "--calib-clips", "8"]) == 0
    out = capsys.readouterr().out
    assert "student.onnx" in out and "student.int8.onnx" in out and "ok" in out

    export = run / "export"
    art = json.loads((export / "artifact.json").read_text())
    assert (art["format"], art["precision"], art["file"]) == ("onnx", "fp32", "student.onnx")
    assert art["input"] == {"name": "video", "shape": ["batch", 3, 8, 32, 32], "dtype": "float32",
                            "layout": "NCTHW", "dynamic_axes": {"video": {"0": "batch"}, "logits": {"0": "batch"}}}
    assert art["outputs"] == [{"name": "logits", "shape": ["batch", 4]}] and art["opset"] == 17
    assert art["data_spec"]["frames"] == 8 and len(art["data_spec"]["class_names"]) == 4
    assert art["checkpoint"]["sha256"] == sha256_file(run / "checkpoint.pt") and "checkpoint_sha256" not in art
    assert (export / art["checkpoint"]["path"]).resolve() == (run / "checkpoint.pt").resolve()
    assert all(art["libraries"][k] for k in ("torch", "onnx", "onnxruntime", "numpy")) and "tensorrt" in art["libraries"]
    assert art["created"] and art["parity_inputs"]["clips"]["split"] == "test"
    for entry in art["artifacts"]:
        assert entry["sha256"] == sha256_file(export / entry["file"]) and entry["parity"]["passed"]
    assert art["artifacts"][1]["quantization"]["calibration_clips"] == 8
    gate = art["artifacts"][1]["parity"]
    assert gate["clips"]["n"] == 16 and gate["tolerance"]["min_top1"] == 0.8  # the gate the docstring counts on
    assert oct((export / "student.onnx").stat().st_mode & 0o777) != oct(0o600)  # not left private


def test_force_semantics(run):
    from edgekd.export.api import export_run
    from edgekd.export.parity import Tolerance

    out = export_run(run, **FAST)
    before = (out / "artifact.json").read_text()
    with pytest.raises(ExportError, match="already holds an export") as e:
        export_run(run, **FAST)
    assert "--force" in e.value.hint and (out / "artifact.json").read_text() == before

    # a failing export (impossible tolerance) leaves the previous export untouched, no staging debris
    impossible = Tolerance(atol=0.0, rtol=0.0, min_cosine=1.01, min_top1=1.0, gate_noise=True)
    with pytest.raises(ExportError, match="does not match PyTorch"):
        export_run(run, force=True, tolerances={"fp32": impossible}, **FAST)
    assert (out / "artifact.json").read_text() == before
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "export"]

    export_run(run, force=True, **FAST)
    assert json.loads((out / "artifact.json").read_text())["created"] >= json.loads(before)["created"]
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "export"]

    # --force never deletes a folder that is not an export (here: the run folder itself)
    with pytest.raises(ExportError, match="not an edgekd export folder"):
        export_run(run, out_dir=run, force=True, **FAST)
    assert (run / "checkpoint.pt").is_file()


def test_bad_checkpoints(tmp_path, run):
    import torch

    from edgekd.export.api import export_run

    with pytest.raises(CheckpointError, match="no checkpoint at"):
        export_run(tmp_path / "nowhere", **FAST)
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match=r"not an edgekd checkpoint \(or is damaged\)"):
        export_run(tmp_path / "foreign.pt", **FAST)
    (tmp_path / "garbage.pt").write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match=r"garbage.pt is not an edgekd checkpoint \(or is damaged\)"):
        export_run(tmp_path / "garbage.pt", **FAST)

    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["student"]["name"] = "tiny3dd"
    torch.save(ckpt, tmp_path / "renamed.pt")
    with pytest.raises(CheckpointError, match="unknown student 'tiny3dd'") as e:
        export_run(tmp_path / "renamed.pt", **FAST)
    assert "did you mean 'tiny3d'" in e.value.hint


def test_unwritable_output(run, tmp_path):
    from edgekd.export.api import export_run

    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ExportError, match="cannot create the output folder"):
        export_run(run, out_dir=tmp_path / "a_file" / "export", **FAST)
    with pytest.raises(ExportError, match="is a file, not a folder"):
        export_run(run, out_dir=tmp_path / "a_file", **FAST)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ExportError, match="not writable"):
            export_run(run, out_dir=locked / "export", **FAST)


def test_missing_dataset_falls_back_to_synthetic(run, tiny_synth, monkeypatch):
    """The run's dataset is gone: clips come from the embedded synthetic dataset, and artifact.json says so."""
    import edgekd.data.synthetic as synthetic
    from edgekd.export.api import export_run

    monkeypatch.setattr(synthetic, "default_dataset", lambda progress=True: tiny_synth)  # the cached synthetic set
    out = export_run(run, data=run / "moved-away", **FAST)
    clips = json.loads((out / "artifact.json").read_text())["parity_inputs"]["clips"]
    assert clips["source"] == "embedded synthetic dataset" and "unavailable" in clips["note"]
