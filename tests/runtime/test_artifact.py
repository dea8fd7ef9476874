"""artifact.json typed: today's file round-trips, an older one (checkpoint sha at the top level) still loads,
anything else is one error line saying to re-export."""

from __future__ import annotations

import json

import pytest

from edgekd.errors import BenchError, ExportError

ENTRY = {"format": "onnx", "precision": "fp32", "file": "student.onnx", "sha256": "ab" * 32, "bytes": 10}


def _today() -> dict:
    return {"kind": "edgekd-export", "format": "onnx", "precision": "fp32", "file": "student.onnx",
            "input": {"name": "video", "shape": ["batch", 3, 8, 32, 32]}, "outputs": [], "opset": 17,
            "data_spec": {"frames": 8}, "student": {"name": "tiny3d", "kwargs": {}},
            "checkpoint": {"path": "../checkpoint.pt", "sha256": "cd" * 32, "metrics": {}}, "parity_inputs": {},
            "eval": {}, "artifacts": [ENTRY], "deploy": {"runtimes": {"onnxruntime-cpu": "student.onnx"}},
            "tensorrt_readiness": None, "libraries": {}, "created": "now"}


def test_today_round_trips(tmp_path):
    from edgekd.runtime.artifact import Artifact

    (tmp_path / "artifact.json").write_text(json.dumps(_today()))
    art = Artifact.load(tmp_path)
    assert art.to_dict() == _today()
    assert art.precisions == ["fp32"] and art.runtimes == {"onnxruntime-cpu": "student.onnx"}


def test_older_file_with_the_sha_at_the_top_level_loads(tmp_path):
    from edgekd.runtime.artifact import Artifact, load_artifact

    old = _today()
    old["checkpoint_sha256"] = old["checkpoint"].pop("sha256")
    (tmp_path / "artifact.json").write_text(json.dumps(old))
    assert Artifact.load(tmp_path).checkpoint_sha256 == "cd" * 32
    assert load_artifact(tmp_path)["checkpoint"]["sha256"] == "cd" * 32 and "checkpoint_sha256" not in load_artifact(tmp_path)


@pytest.mark.parametrize("damage", [lambda d: d.pop("kind"), lambda d: d.update(artifacts={"fp32": ENTRY}),
                                    lambda d: d["artifacts"][0].pop("file")])
def test_any_other_shape_is_one_line_saying_re_export(tmp_path, damage):
    from edgekd.runtime.artifact import Artifact

    d = _today()
    damage(d)
    (tmp_path / "artifact.json").write_text(json.dumps(d))
    for error in (ExportError, BenchError):
        with pytest.raises(error, match="was not written by this edgekd's export") as e:
            Artifact.load(tmp_path, error)
        assert "\n" not in str(e.value) and "edgekd export RUN --force" in e.value.hint


def test_no_artifact_file_name_is_written_outside_the_table():
    """Every string in edgekd's code (docstrings and comments aside) names export files through FILES."""
    import ast
    from pathlib import Path

    from edgekd.runtime.artifact import FILES

    pkg = Path(__file__).resolve().parents[2] / "edgekd"
    names = [n for n in FILES.values() if "." in n]  # the folder names deepstream/triton are also runtime names
    bad = []
    for f in sorted(pkg.rglob("*.py")):
        if f == pkg / "runtime" / "artifact.py":
            continue
        tree = ast.parse(f.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        bad += [f"{f.relative_to(pkg)}:{n.lineno} {n.value[:60]!r}" for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
                and any(name in n.value for name in names)]
    assert not bad, bad
