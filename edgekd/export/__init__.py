"""The export stage: a trained student -> ONNX (FP32), QDQ INT8, TensorRT engine or build manifest,
each proven against PyTorch on real clips and described in artifact.json.

    from edgekd.export import export_run
    export_dir = export_run("runs/NAME", trt=True, profile="orin-nano-8gb-15w")

Modules: onnx_export (torch -> ONNX), parity (artifact vs PyTorch), int8 (ORT static quantization),
tensorrt (engine build / build manifest), readiness (TensorRT + DLA support check), artifact
(artifact.json), api (export_run ties them together). Heavy libraries load inside functions.
"""

from edgekd.export.api import export_run

__all__ = ["export_run"]
