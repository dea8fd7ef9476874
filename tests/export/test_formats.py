"""The export format table: --format and the old flags ask for the same formats, every flag rule lives in
one place (export_run and `edgekd export` give the same error), and the table names every file an export writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekd.errors import ConfigError


@pytest.mark.parametrize("flags, formats", [
    (dict(), "onnx,int8,int8-cpu,fp16"),
    (dict(int8=False), "onnx,fp16"),
    (dict(int8=False, fp16_onnx=False), "onnx"),
    (dict(cpu_int8="never"), "onnx,int8,fp16"),
    (dict(trt=True, deepstream=True, triton=True, streaming=True), "onnx,int8,int8-cpu,fp16,stream,tensorrt,deepstream,triton"),
])
def test_old_flags_are_spellings_of_format(flags, formats):
    from edgekd.export.formats import formats_from_flags, parse_formats

    assert formats_from_flags(**flags) == parse_formats(formats) == tuple(formats.split(","))


def test_unknown_format_names_the_known_ones():
    from edgekd.export.formats import parse_formats

    with pytest.raises(ConfigError, match="unknown format 'tensorrrt'") as e:
        parse_formats("onnx,tensorrrt")
    assert "tensorrt" in e.value.hint


@pytest.mark.parametrize("fields, message", [
    (dict(precision="int8"), "--fp16/--int8 choose the TensorRT / DeepStream engine precision"),
    (dict(dla=True), "--dla/--fp16-layers shape the TensorRT engine"),
    (dict(trt=True, implicit_int8=True), "--trt-implicit-int8 is an INT8 engine"),
    (dict(trt=True, precision="int8", int8=False), "an INT8 engine compiles student.int8.onnx"),
    (dict(formats="onnx,int8-cpu"), "format int8-cpu needs int8"),
])
def test_flag_rules_are_one_place(run_dir, fields, message, capsys):
    """The library and the CLI refuse the same combinations with the same line, before any work."""
    from edgekd.cli.main import main
    from edgekd.export.api import export_run

    with pytest.raises(ConfigError, match=message.replace("-", "\\-").replace("/", "\\/")):
        export_run(run_dir, **fields)
    argv = {"precision": ["--int8"] if fields.get("precision") == "int8" else [], "dla": ["--dla"] * fields.get("dla", 0),
            "trt": ["--trt"] * fields.get("trt", 0), "implicit_int8": ["--trt-implicit-int8"] * fields.get("implicit_int8", 0),
            "int8": ["--no-quantize"] * (fields.get("int8") is False), "formats": ["--format", fields.get("formats")] * ("formats" in fields)}
    assert main(["export", str(run_dir), *[a for v in argv.values() for a in v]]) == 2
    assert f"error: {message}" in capsys.readouterr().err
    assert not (run_dir / "export").exists()


@pytest.fixture
def run_dir(tiny_synth, tmp_path, make_ckpt) -> Path:
    return make_ckpt(tmp_path / "runs" / "tiny", "tiny3d", tiny_synth, width=0.5)


def test_cli_format_writes_only_those_formats(run_dir):
    from edgekd.cli.main import main

    assert main(["export", str(run_dir), "--format", "fp16", "--parity-clips", "2", "--eval-clips", "4"]) == 0
    art = json.loads((run_dir / "export" / "artifact.json").read_text())
    assert [a["file"] for a in art["artifacts"]] == ["student.onnx", "student.fp16.onnx"]
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == ["artifact.json", "student.fp16.onnx", "student.onnx"]


def test_file_table_names_every_file_an_export_writes(deploy_export):
    """Everything the fullest export leaves at the top of its folder is a name of runtime.artifact.FILES."""
    from edgekd.runtime.artifact import FILES

    from edgekd.export.formats import FORMATS

    assert all(key in FILES for f in FORMATS.values() for key in f.files)
    written = {p.name for p in deploy_export.iterdir()}
    assert written - set(FILES.values()) == set()
    assert {FILES[k] for k in ("artifact", "onnx", "int8", "fp16", "build-manifest", "build-script", "deepstream",
                               "triton")} <= written
