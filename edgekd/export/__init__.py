"""The export stage: a trained student -> ONNX (FP32), QDQ INT8, TensorRT engine or build manifest,
each proven against PyTorch on real clips and described in artifact.json.

    from edgekd.export import export_run
    export_dir = export_run("runs/NAME", trt=True, profile="orin-nano-8gb-15w")

    api          ExportRequest, export_run: reads the format table, writes each format, artifact.json
    formats      the format table: what each format writes, what it needs, the function that writes it
    onnx_export  torch -> one self-contained ONNX file, checked and annotated
    parity       a comparator over two runners: every artifact against PyTorch on the same real clips
    variants     the reduced-precision ONNX files, each proven on the same clips as student.onnx
    fp16         FP16 ONNX for ONNX Runtime CUDA and Triton
    ort_quantize the quantizer skeleton both INT8 files share (ONNX Runtime's quantize_static on clips)
    int8         INT8 for CPU / ONNX Runtime: static QDQ quantization calibrated on real clips
    qdq          INT8 as TensorRT reads it: explicit Q/DQ ONNX from CPU to Jetson
    tensorrt     TensorRT engines (Python API), else a build manifest and trtexec script
    readiness    will the graph build with TensorRT on a target, what runs on its DLA (no TensorRT needed)
    streaming    student.stream.onnx: one frame in, that frame's logits out, state carried
    deepstream   a DeepStream bundle (deepstream-3d-action-recognition)
    triton       a Triton Inference Server model repository
    artifact     the export folder's table: one row per artifact with its parity and accuracy figures

Runners, profiles, the artifact contract, eval clips and metrics come from edgekd.runtime.
Heavy libraries load inside functions.
"""

from edgekd.export.api import export_run

__all__ = ["export_run"]
