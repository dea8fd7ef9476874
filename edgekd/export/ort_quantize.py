"""The one skeleton both INT8 files are made with: ONNX Runtime's `quantize_static` on real clips.

    q = static_qdq(fp32_path, out_dir, calib, input_name, method="minmax", hint=..., **quantize_kwargs)
    finish_quantized(q, fp32_model, precision="int8-qdq")   # contract metadata, opsets, producer, checker

edgekd.export.int8 (the ONNX Runtime CPU file) and edgekd.export.qdq (the TensorRT file) differ only in
the options they pass and in what they do to the graph afterwards.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import ExportError
from edgekd.export.onnx_export import prune_opsets, set_producer


def calibration_reader(input_name: str, clips, batch_size: int):
    """Calibration batches: `clips` is (N, ...) for the model's one input, or {input name: (N, ...)}
    for a model with several (a streaming model's frame and its state buffers)."""
    from onnxruntime.quantization import CalibrationDataReader

    feeds = clips if isinstance(clips, dict) else {input_name: clips}
    n = len(next(iter(feeds.values())))

    class ClipReader(CalibrationDataReader):
        """Feeds batches of real clips (or frames + states) to the calibration session."""

        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= n:
                return None
            batch = {k: np.ascontiguousarray(v[self.i:self.i + batch_size], dtype=np.float32) for k, v in feeds.items()}
            self.i += batch_size
            return batch

        def __len__(self):
            return -(-n // batch_size)

    return ClipReader()


@contextlib.contextmanager
def quiet_quantizer():
    """ORT's quantizer prints calibration progress and logs a root-logger WARNING per integer tensor it
    skips (shape arithmetic in TSM/X3D graphs): noise to the user, so neither reaches the console."""
    import logging

    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def calibration_batch(model, method: str) -> int:
    """Histogram calibrators keep per-tensor histograms over every batch: batch 1 keeps memory flat;
    minmax takes 4; a static-batch model takes exactly its batch."""
    fixed = model.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    return fixed or (4 if method == "minmax" else 1)


def static_qdq(fp32_path: str | Path, out_dir: Path, calib, input_name: str, *, method: str, batch: int,
               hint: str, **options: Any):
    """quantize_static of `fp32_path` in QDQ format, calibrated on `calib` with `method` (minmax,
    entropy, percentile), after ORT's recommended pre-processing; returns the quantized ModelProto."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibrate = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                 "percentile": CalibrationMethod.Percentile}[method]
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".quantize-") as tmp:
        prep, staged = Path(tmp) / "prep.onnx", Path(tmp) / "quantized.onnx"
        # Shape inference + ORT's graph-level folding first, as ORT's quantization guide recommends.
        quant_pre_process(str(fp32_path), str(prep), skip_symbolic_shape=True)
        try:
            with quiet_quantizer():
                quantize_static(str(prep), str(staged), calibration_reader(input_name, calib, batch),
                                quant_format=QuantFormat.QDQ, calibrate_method=calibrate, **options)
        except Exception as e:  # noqa: BLE001 - ORT raises bare Exceptions for unsupported graphs
            raise ExportError(f"INT8 quantization of {fp32_path} failed: {type(e).__name__}: {str(e).splitlines()[0]}",
                              hint) from e
        return onnx.load(str(staged))


def finish_quantized(q, fp32_model, precision: str) -> None:
    """Carry the FP32 file's metadata (the preprocessing contract) over, which quantize_static does not
    always keep; record the precision; keep only the opsets used; name the producer; check the graph."""
    import onnx

    del q.metadata_props[:]
    for p in fp32_model.metadata_props:
        q.metadata_props.add(key=p.key, value=p.value)
    q.metadata_props.add(key="precision", value=precision)
    prune_opsets(q)
    set_producer(q)
    onnx.checker.check_model(q)
