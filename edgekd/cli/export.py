"""`edgekd export`: ONNX (+ INT8, + TensorRT engine or build manifest) with parity proven on real clips.

    edgekd export runs/NAME                          student.onnx + student.int8.onnx + artifact.json
    edgekd export runs/NAME --trt --int8 --profile agx-orin-64gb
    edgekd export runs/NAME --check-trt --profile orin-nano-8gb-15w      (no TensorRT needed)
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgekd.cli import console


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        run: Path = typer.Argument(..., metavar="RUN_OR_CHECKPOINT",
                                   help="Run folder (runs/NAME), its checkpoint.pt, or (with --check-trt) an ONNX file."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Export folder (default: RUN/export)."),
        opset: int = typer.Option(17, "--opset", help="ONNX opset (the exporter writes 7-20; 17 suits TensorRT 8.5+)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing export."),
        quantize: bool = typer.Option(True, "--quantize/--no-quantize",
                                      help="Also write student.int8.onnx (static QDQ INT8 for ONNX Runtime)."),
        int8_method: str = typer.Option("minmax", "--int8-method", help="INT8 calibration: minmax | entropy | percentile."),
        calib_clips: int = typer.Option(32, "--calib-clips", help="Training clips used for INT8 calibration."),
        int8_activations: str = typer.Option("uint8", "--int8-activations",
                                             help="uint8 (asymmetric, x86) or int8 (symmetric, ARM/TensorRT)."),
        reduce_range: bool = typer.Option(True, "--int8-reduce-range/--int8-full-range",
                                          help="7-bit INT8 weights: avoids int16 saturation on x86 CPUs without VNNI."),
        trt: bool = typer.Option(False, "--trt", help="Build a TensorRT engine (or, without TensorRT, a build manifest)."),
        fp16: bool = typer.Option(False, "--fp16", help="TensorRT engine in FP16 (the default)."),
        int8: bool = typer.Option(False, "--int8", help="TensorRT engine in INT8 (entropy calibration on dataset clips)."),
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

        if fp16 and int8:
            raise ConfigError("--fp16 and --int8 both given", "pick one TensorRT precision")
        precision = "int8" if int8 else "fp16"
        if (fp16 or int8 or dla or fp16_layers) and not (trt or check_trt):
            raise ConfigError("--fp16/--int8/--dla/--fp16-layers choose the TensorRT engine",
                              "add --trt (ONNX Runtime INT8 is on by default; --no-quantize turns it off)")
        if check_trt:
            if profile is None:
                raise ConfigError("--check-trt needs --profile", "e.g. --profile orin-nano-8gb-15w (edgekd profiles)")
            from edgekd.export.readiness import check_target, readiness_error, render, verdict_lines

            r = check_target(run, profile, precision, opset)
            console.out.print(render(r))
            for line in verdict_lines(r):
                console.out.print(line, highlight=False)
            if (error := readiness_error(r, require_dla=dla)) is not None:
                raise error
            return

        from edgekd.export.api import ExportRequest, export_run
        from edgekd.export.artifact import render_table
        from edgekd.export.int8 import Int8Settings
        from edgekd.export.parity import tolerances
        from edgekd.runtime.artifact import load_artifact

        req = ExportRequest(
            out_dir=out, opset=opset, int8=quantize, trt=trt, precision=precision, profile=profile, force=force,
            data=data, parity_clips=parity_clips, eval_clips=eval_clips,
            int8_settings=Int8Settings(method=int8_method, calibration_clips=calib_clips,
                                       activation=int8_activations, reduce_range=reduce_range),
            tolerances=tolerances(atol, int8_min_agreement, int8_min_cosine), dla=dla, dla_core=dla_core,
            fp16_layers=tuple(s.strip() for s in fp16_layers.split(",") if s.strip()) if fp16_layers else (),
            simplify=simplify, dynamic_batch=not static_batch)
        out_dir = export_run(run, request=req, reporter=console.reporter())
        console.out.print(render_table(load_artifact(out_dir)))
