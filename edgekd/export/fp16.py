"""FP16 ONNX for ONNX Runtime CUDA and Triton's onnxruntime backend.

The converter is ONNX Runtime's own (`onnxruntime.transformers.float16.convert_float_to_float16`,
shipped with onnxruntime, so no new dependency), with keep_io_types=True: weights and activations
are float16, the input and output stay float32 behind one Cast each. DeepStream and Triton clients
then feed the same float32 tensors to every variant (nvdspreprocess writes FP32 only), and the
parity check compares like with like. TensorRT builds its FP16 engine from the FP32 file instead
(`--fp16`), so this file is for ONNX Runtime / Triton only.

ONNX Runtime's CPU provider runs FP16 Conv3d/Gemm, so parity is measured here, on CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.errors import ExportError
from edgekd.runtime.artifact import FILES


def convert_fp16(fp32_path: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Write an FP16 copy of `fp32_path` with FP32 inputs/outputs; returns what was done."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from edgekd.export.onnx_export import set_producer
    from edgekd.io import atomic_path

    model = onnx.load(str(fp32_path))
    try:
        half = convert_float_to_float16(model, keep_io_types=True)
    except Exception as e:  # noqa: BLE001 - the converter raises plain exceptions on odd graphs
        raise ExportError(f"FP16 conversion of {fp32_path} failed: {type(e).__name__}: {str(e).splitlines()[0]}",
                          f"export with --no-fp16-onnx; TensorRT still builds FP16 from {FILES['onnx']}") from e
    _toposort(half.graph)  # the converter appends its I/O Casts at the end of the node list
    props = {p.key: p.value for p in half.metadata_props}
    props["precision"] = "fp16 (io float32)"
    del half.metadata_props[:]
    for k, v in props.items():
        half.metadata_props.add(key=k, value=v)
    set_producer(half)
    onnx.checker.check_model(half)
    with atomic_path(Path(out_path)) as t:
        onnx.save(half, str(t))
    inits = [i for i in half.graph.initializer]
    return {"converter": "onnxruntime.transformers.float16.convert_float_to_float16", "keep_io_types": True,
            "io_dtype": "float32",
            "fp16_initializers": sum(i.data_type == onnx.TensorProto.FLOAT16 for i in inits),
            "fp32_initializers": sum(i.data_type == onnx.TensorProto.FLOAT for i in inits),
            "casts": sum(n.op_type == "Cast" for n in half.graph.node)}


def _toposort(graph) -> None:
    """Reorder graph.node so every node comes after the producers of its inputs (ONNX requires it)."""
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise ExportError("the FP16 graph has a cycle or a missing input", "export with --no-fp16-onnx")
        for n in ready:
            ordered.append(n)
            known.update(n.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)
