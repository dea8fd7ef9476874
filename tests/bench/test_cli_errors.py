"""A damaged export or a read-only run folder: one error line naming the file or folder and the fix
(exit 2), before anything is measured or evaluated."""

from __future__ import annotations

import pytest

from edgekd.cli.main import main
from unprivileged import edgekd_cli

FAST = ["-n", "2", "--warmup", "0", "-b", "1", "--e2e-clips", "0", "--threads", "1", "--runtimes", "ort-cpu"]


def _error(err: str) -> tuple[str, str]:
    lines = err.strip().splitlines()[-2:]
    assert [ln.split(":")[0] for ln in lines] == ["error", "hint"], err
    return lines[0], lines[1]


def test_truncated_onnx_is_caught_by_its_recorded_sha256(run_copy, capsys):
    onnx = run_copy / "export" / "student.onnx"
    onnx.write_bytes(onnx.read_bytes()[: onnx.stat().st_size // 2])
    assert main(["bench", str(run_copy), *FAST]) == 2
    error, hint = _error(capsys.readouterr().err)
    assert error.startswith(f"error: {onnx} is damaged or changed since export (sha256 ")
    assert "edgekd export RUN --force" in hint and not (run_copy / "bench").exists()


def test_truncated_onnx_without_artifact_json_is_named(run_copy, capsys):
    onnx = run_copy / "export" / "student.onnx"
    onnx.write_bytes(onnx.read_bytes()[: onnx.stat().st_size // 2])
    (run_copy / "export" / "artifact.json").unlink()
    assert main(["bench", str(run_copy), *FAST]) == 2
    error, _ = _error(capsys.readouterr().err)
    assert error == f"error: {onnx} is not a readable ONNX file (DecodeError)"


@pytest.fixture
def read_only_run(run_copy):
    run_copy.chmod(0o555)
    yield run_copy
    run_copy.chmod(0o755)


def test_eval_and_bench_refuse_a_read_only_run_before_working(read_only_run):
    r = edgekd_cli(["eval", str(read_only_run), "--workers", "0"])
    error, hint = _error(r.stderr)
    assert r.returncode == 2 and error == f"error: the run folder {read_only_run} is not writable"
    assert f"pass {read_only_run / 'checkpoint.pt'} to evaluate without writing eval.json" in hint
    assert "eval  " not in r.stderr  # refused before the evaluation started
    r = edgekd_cli(["bench", str(read_only_run), *FAST])
    error, hint = _error(r.stderr)
    assert r.returncode == 2 and error == (f"error: the bench folder {read_only_run / 'bench'} cannot be created: "
                                           f"{read_only_run} is not writable")
    assert "--out" in hint and "ort-cpu" not in r.stderr  # nothing was measured


def test_an_older_artifact_json_still_guards_the_checkpoint(run_copy):
    """artifact.json from before the sha was stored once (top level only) still ties bench to its checkpoint."""
    import json

    from edgekd.bench.artifacts import resolve
    from edgekd.errors import BenchError

    art = run_copy / "export" / "artifact.json"
    data = json.loads(art.read_text())
    data["checkpoint_sha256"] = data["checkpoint"].pop("sha256")
    art.write_text(json.dumps(data))
    assert resolve(run_copy).checkpoint_sha256 == data["checkpoint_sha256"]
    ckpt = run_copy / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")
    with pytest.raises(BenchError, match="is not the checkpoint"):
        resolve(run_copy)


def test_an_engine_built_on_the_target_is_found_through_its_build_manifest_entry(run_copy):
    """Bench finds an engine `build_engine.sh` made on the target only through artifact.json's
    build-manifest entry (no directory glob)."""
    import json

    from edgekd.bench.artifacts import resolve
    from edgekd.runtime.artifact import FILES

    export = run_copy / "export"
    art = json.loads((export / FILES["artifact"]).read_text())
    art["artifacts"].append({"format": "tensorrt-build-manifest", "precision": "int8", "file": FILES["build-manifest"],
                         "engine": "student.int8.engine"})
    (export / FILES["artifact"]).write_text(json.dumps(art))
    (export / FILES["build-manifest"]).write_text("{}")
    assert resolve(run_copy).engines == {}  # listed, not built yet
    (export / "student.int8.engine").write_bytes(b"")
    assert resolve(run_copy).engines == {"int8": export / "student.int8.engine"}
