"""The export stage: a trained student -> ONNX (FP32), QDQ INT8, TensorRT engine or build manifest,
each proven against PyTorch on real clips and described in artifact.json.

    from edgekd.export import export_run
    export_dir = export_run("runs/NAME", trt=True, profile="orin-nano-8gb-15w")

Modules: onnx_export (torch -> ONNX), parity (a comparator over two runners: artifact vs PyTorch),
int8 (ORT static quantization), tensorrt (build manifest, trtexec script), readiness (TensorRT + DLA
support check), artifact (the export table), api (ExportRequest, export_run ties them together).
Runners, profiles, the artifact contract, eval clips and metrics come from edgekd.runtime.
Heavy libraries load inside functions.
"""

from edgekd.export.api import export_run

__all__ = ["export_run"]
