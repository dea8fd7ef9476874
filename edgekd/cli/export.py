"""`edgekd export`: ONNX (+ INT8, + TensorRT engine or build manifest) with parity proven on real clips.

    edgekd export runs/NAME                  student.onnx + student.int8.onnx (Q/DQ, TensorRT rules)
                                             + student.fp16.onnx + artifact.json
    edgekd export runs/NAME --format onnx,int8,tensorrt --int8 --profile agx-orin-64gb
                                             INT8 engine compiled from student.int8.onnx
    edgekd export runs/NAME --format onnx,deepstream,triton        deploy bundles in export/deepstream, export/triton
    edgekd export runs/NAME --streaming                            + student.stream.onnx (one frame in, state carried)

--trt, --deepstream, --triton, --streaming add a format, --no-quantize / --no-fp16-onnx drop one: the
older spelling of --format (edgekd.export.formats).
    edgekd export runs/NAME --check-trt --profile orin-nano-8gb-15w      (no TensorRT needed)
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgekd.cli import console
from edgekd.export.formats import DEFAULT_FORMATS, FORMATS
from edgekd.runtime.artifact import FILES


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        run: Path = typer.Argument(..., metavar="RUN_OR_CHECKPOINT",
                                   help="Run folder (runs/NAME), its checkpoint.pt, or (with --check-trt) an ONNX file."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Export folder (default: RUN/export)."),
        opset: int = typer.Option(17, "--opset", help="ONNX opset (the exporter writes 7-20; 17 suits TensorRT 8.5+)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing export."),
        formats: Optional[str] = typer.Option(None, "--format",
                                              help=f"Comma-separated formats: {', '.join(FORMATS)} "
                                                   f"(default: {','.join(DEFAULT_FORMATS)})."),
        quantize: bool = typer.Option(True, "--quantize/--no-quantize",
                                      help=f"Also write {FILES['int8']} (Q/DQ INT8 by TensorRT's rules, calibrated on "
                                           "the run's clips)."),
        fp16_onnx: bool = typer.Option(True, "--fp16-onnx/--no-fp16-onnx",
                                       help=f"Also write {FILES['fp16']} (FP16 inside, FP32 I/O) for ORT CUDA / Triton."),
        cpu_int8: str = typer.Option("auto", "--cpu-int8",
                                     help=f"{FILES['int8-cpu']} (ORT's x86 uint8 format): auto = kept only if faster "
                                          "on this CPU | always | never."),
        int8_method: str = typer.Option("auto", "--int8-method",
                                        help="INT8 calibration: auto (minmax or percentile, whichever agrees best with "
                                             "FP32 on the calibration clips) | minmax | entropy | percentile."),
        calib_clips: int = typer.Option(32, "--calib-clips", help="Training clips used for INT8 calibration."),
        int8_activations: str = typer.Option("uint8", "--int8-activations",
                                             help="CPU INT8 variant: uint8 (asymmetric, x86) or int8 (symmetric, ARM)."),
        reduce_range: bool = typer.Option(True, "--int8-reduce-range/--int8-full-range",
                                          help="CPU INT8 variant: 7-bit weights (no int16 saturation without VNNI)."),
        trt: bool = typer.Option(False, "--trt", help="Build a TensorRT engine (or, without TensorRT, a build manifest)."),
        fp16: bool = typer.Option(False, "--fp16", help="TensorRT / DeepStream engine in FP16 (the default)."),
        int8: bool = typer.Option(False, "--int8", help="TensorRT / DeepStream engine in INT8, compiled from the Q/DQ "
                                                        f"{FILES['int8']} (explicit quantization, no calibrator)."),
        trt_implicit_int8: bool = typer.Option(False, "--trt-implicit-int8",
                                               help="TensorRT 8.x fallback: calibrate the FP32 ONNX on the target "
                                                    "(IInt8EntropyCalibrator2) instead of the Q/DQ file."),
        deepstream: bool = typer.Option(False, "--deepstream", help=f"Write export/{FILES['deepstream']}/: nvdspreprocess + nvinfer "
                                                                    "configs, labels, softmax ONNX, README."),
        triton: bool = typer.Option(False, "--triton", help=f"Write export/{FILES['triton']}/: a Triton model repository "
                                                            "(onnxruntime FP32/FP16 + tensorrt_plan to build)."),
        streaming: bool = typer.Option(False, "--streaming",
                                       help=f"Also write {FILES['stream']}: one frame in, that frame's logits out, "
                                            "shift buffers as state_in_K/state_out_K (needs student.shift=online)."),
        max_batch: int = typer.Option(4, "--max-batch", help="DeepStream batch-size / Triton max_batch_size."),
        fp16_layers: Optional[str] = typer.Option(None, "--fp16-layers",
                                                  help="INT8 engine: keep these layers in FP16 - 'auto' or comma-separated "
                                                       "ONNX node names/globs/op types."),
        profile: Optional[str] = typer.Option(None, "--profile", "-p",
                                              help="Hardware profile (name or TOML) for TensorRT: batch range, workspace, DLA."),
        dla: bool = typer.Option(False, "--dla", help="Put the engine on the profile's DLA (with GPU fallback)."),
        dla_core: int = typer.Option(0, "--dla-core", help="Which DLA core."),
        check_trt: bool = typer.Option(False, "--check-trt",
                                       help="Only check the graph against TensorRT/DLA support for --profile."),
        data: Optional[Path] = typer.Option(None, "--data", help="Dataset for parity/calibration clips "
                                                                 "(default: the run's dataset)."),
        parity_clips: int = typer.Option(16, "--parity-clips", help="Real clips compared with PyTorch."),
        eval_clips: Optional[int] = typer.Option(None, "--eval-clips",
                                                 help="Eval clips for the accuracy figures (default: the whole test split, "
                                                      "as bench and training)."),
        atol: Optional[float] = typer.Option(None, "--atol", help="FP32 parity: max |logit diff| (plus 1e-3 x logit scale)."),
        int8_min_agreement: Optional[float] = typer.Option(None, "--int8-min-agreement",
                                                           help="INT8 parity: min top-1 agreement with PyTorch on clips."),
        int8_min_cosine: Optional[float] = typer.Option(None, "--int8-min-cosine",
                                                        help="INT8 parity: min cosine similarity of logits."),
        simplify: bool = typer.Option(True, "--simplify/--no-simplify", help="Keep a simplified graph when it helps."),
        static_batch: bool = typer.Option(False, "--static-batch", help="Fix the batch axis at 1 (default: dynamic batch)."),
    ) -> None:
        """Export a trained student to ONNX / INT8 / TensorRT and prove each file against PyTorch."""
        from edgekd.errors import ConfigError
        from edgekd.export.api import ExportRequest, export_run
        from edgekd.export.formats import check_request, engine_precision, formats_from_flags
        from edgekd.export.int8 import Int8Settings
        from edgekd.export.parity import tolerances

        req = ExportRequest(
            out_dir=out, opset=opset, precision=engine_precision(fp16, int8), profile=profile, force=force,
            formats=formats_from_flags(formats, int8=quantize, fp16_onnx=fp16_onnx, trt=trt, deepstream=deepstream,
                                       triton=triton, streaming=streaming, cpu_int8=cpu_int8),
            data=data, parity_clips=parity_clips, eval_clips=eval_clips,
            int8_settings=Int8Settings(method=int8_method, calibration_clips=calib_clips,
                                       activation=int8_activations, reduce_range=reduce_range),
            tolerances=tolerances(atol, int8_min_agreement, int8_min_cosine), dla=dla, dla_core=dla_core,
            fp16_layers=tuple(s.strip() for s in fp16_layers.split(",") if s.strip()) if fp16_layers else (),
            simplify=simplify, dynamic_batch=not static_batch, cpu_int8=cpu_int8, implicit_int8=trt_implicit_int8,
            max_batch=max_batch)
        check_request(req, check_only=check_trt)
        if check_trt:
            if profile is None:
                raise ConfigError("--check-trt needs --profile", "e.g. --profile orin-nano-8gb-15w (edgekd profiles)")
            from edgekd.export.readiness import check_target, readiness_error, render, verdict_lines

            r = check_target(run, profile, req.engine_precision, opset)
            console.out.print(render(r))
            for line in verdict_lines(r):
                console.out.print(line, highlight=False)
            if (error := readiness_error(r, require_dla=dla)) is not None:
                raise error
            return

        from edgekd.export.artifact import render_table
        from edgekd.runtime.artifact import load_artifact

        out_dir = export_run(run, request=req, reporter=console.reporter())
        console.out.print(render_table(load_artifact(out_dir)))
