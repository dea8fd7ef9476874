"""PyTorch student -> one self-contained ONNX file, checked and annotated.

The legacy TorchScript exporter (`torch.onnx.export(dynamo=False)`) writes the whole model, weights
included, into one file at exactly the opset asked for; the dynamo exporter would need onnxscript and
write external data. Opset 17 is the default because it is the newest opset every deployment target
we profile parses: TensorRT 8.5/8.6 (JetPack 5) stops at 17, TensorRT 10 takes 9-20+, and ONNX
Runtime takes all of them. The exporter itself produces opsets 7-20.

    input  "video"  float32 (batch, 3, frames, size, size)   normalized with the spec's mean/std
    output "logits" float32 (batch, num_classes)

The batch axis is dynamic unless asked otherwise; frames and size are fixed by the data spec, so
TensorRT and DLA see static spatial shapes. The file passes onnx.checker (full) and strict shape
inference, carries the preprocessing contract in metadata_props, and is simplified (onnxsim when
installed, else ONNX Runtime's standard-domain basic passes) only when that removes nodes and the
simplified graph gives the same logits.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekd.errors import ExportError

from edgekd.runtime.artifact import INPUT_NAME, OUTPUT_NAME, metadata
DEFAULT_OPSET = 17
# The TorchScript exporter's range (torch.onnx._constants ONNX_MIN_OPSET / TORCHSCRIPT max).
MIN_OPSET, MAX_OPSET = 7, 20


def load_student(ckpt_path: Path):
    """(checkpoint dict, student in eval mode, DataSpec); CheckpointError for anything unusable."""
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint
    from edgekd.errors import CheckpointError, ConfigError

    ckpt = load_checkpoint(ckpt_path)
    student = ckpt.get("student")
    if not isinstance(student, dict) or "name" not in student or "data_spec" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{ckpt_path} lacks the student/data_spec/state_dict entries of an edgekd checkpoint",
                              "pass a checkpoint.pt written by `edgekd distill`")
    try:
        model, spec = build_student_from_checkpoint(ckpt)
    except ConfigError as e:
        raise CheckpointError(f"{ckpt_path}: {e.message} (the student named inside the checkpoint)",
                              (e.hint + "; " if e.hint else "") +
                              "the checkpoint may come from a newer edgekd - upgrade, or re-run `edgekd distill`") from e
    return ckpt, model, spec


@dataclass
class OnnxInfo:
    """What was written: enough to fill artifact.json and to build an engine from the file."""

    path: Path
    opset: int
    input_name: str
    input_shape: list[int | str]      # e.g. ["batch", 3, 8, 64, 64]
    output_names: list[str]
    output_shape: list[int | str]
    dynamic_axes: dict[str, dict[int, str]]
    num_nodes: int
    simplified: str | None            # which simplifier was kept, None if none helped


def check_opset(opset: int) -> int:
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"the ONNX exporter cannot produce opset {opset!r} (it writes opsets {MIN_OPSET}-{MAX_OPSET})",
                          f"pass --opset {DEFAULT_OPSET} (the default; TensorRT 8.5+ and ONNX Runtime parse it)")
    return opset


def _dims(value_info) -> list[int | str]:
    return [d.dim_param if d.dim_param else d.dim_value for d in value_info.type.tensor_type.shape.dim]


def validate(model, path: Path | None = None):
    """onnx.checker (full) and strict shape inference; returns the model with inferred shapes."""
    import onnx

    where = str(path) if path else "exported model"
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"{where} fails the ONNX checker: {str(e).splitlines()[0]}",
                          "report the student and opset; try another --opset") from e
    return inferred


def _simplify(model) -> tuple[Any, str] | None:
    """onnxsim if installed, else ONNX Runtime's basic graph optimizations; None if neither runs.

    ORT's *basic* level only applies semantics-preserving rewrites that stay in the standard ONNX
    domain (constant folding, Identity/Dropout/redundant-node removal, Conv+BN/Add/Mul folding), so the
    result is as portable as the input; the extended levels would add ORT-only fused ops and are not used.
    """
    import onnx

    try:
        import onnxsim  # type: ignore[import-not-found]
    except ImportError:
        onnxsim = None
    if onnxsim is not None:
        try:
            simplified, ok = onnxsim.simplify(model)
            if ok:
                return simplified, f"onnxsim {getattr(onnxsim, '__version__', '')}".strip()
        except Exception:  # noqa: BLE001 - a simplifier that fails just isn't used
            pass
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgekd-simplify-") as tmp:
        out = Path(tmp) / "basic.onnx"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(out)
        opts.log_severity_level = 3
        try:
            ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            simplified = onnx.load(str(out))
        except Exception:  # noqa: BLE001
            return None
    if any(n.domain not in ("", "ai.onnx") for n in simplified.graph.node):
        return None  # never trade portability for fewer nodes
    return prune_opsets(simplified), f"onnxruntime {ort.__version__} basic graph optimizations"


def set_producer(model):
    """Name edgekd (and its version) as the producer: every file export writes says who made it, not
    the tool of the last step (torch's exporter, ONNX Runtime's quantizer or float16 converter)."""
    from edgekd import __version__

    model.producer_name, model.producer_version = "edgekd", __version__
    return model


def prune_opsets(model):
    """Drop opset imports no node uses (ORT tools add a dozen vendor domains that parsers then meet)."""
    used = {n.domain for n in model.graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return model


def _ort_outputs(model, x):
    from edgekd.runtime.runners import OrtRunner

    with OrtRunner(model.SerializeToString(), "cpu", "fp32", threads=1) as runner:
        return runner.run(x)


def maybe_simplify(model, probe):
    """Keep a simplified graph only when it has fewer nodes and gives the same logits on `probe`."""
    import numpy as np

    result = _simplify(model)
    if result is None:
        return model, None
    simplified, how = result
    if len(simplified.graph.node) >= len(model.graph.node):
        return model, None
    try:
        validate(simplified)
        a, b = _ort_outputs(model, probe), _ort_outputs(simplified, probe)
    except Exception:  # noqa: BLE001 - a broken simplification is discarded, not fatal
        return model, None
    if a.shape != b.shape or not np.allclose(a, b, rtol=1e-4, atol=1e-5):
        return model, None
    return simplified, how


def export_onnx(model, spec, path: str | Path, *, student_name: str, opset: int = DEFAULT_OPSET,
                dynamic_batch: bool = True, simplify: bool = True,
                extra_metadata: dict[str, Any] | None = None) -> OnnxInfo:
    """Export `model` (eval mode, CPU) for inputs shaped by `spec`; write one self-contained file."""
    import onnx
    import torch

    check_opset(opset)
    path = Path(path)
    model = model.eval().cpu()
    # (B, 3, T, S, S): batch 2 so a dynamic axis is never specialised to 1; a static model is batch 1
    dummy = torch.randn(*spec.input_shape(2 if dynamic_batch else 1), generator=torch.Generator().manual_seed(0))
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else {}
    buf = io.BytesIO()  # exported in memory: nothing half-written on disk if the exporter fails
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings / deprecation notes are noise to the user
            torch.onnx.export(model, (dummy,), buf, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes=axes or None, do_constant_folding=True, export_params=True)
        raw = onnx.load_from_string(buf.getvalue())
    except Exception as e:  # the exporter raises many types (UnsupportedOperatorError, SymbolicValueError...)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.onnx.export failed for {student_name!r} at opset {opset}: {msg}",
                          f"try --opset {DEFAULT_OPSET}, or a newer opset if an operator needs it "
                          f"(the exporter writes {MIN_OPSET}-{MAX_OPSET})") from e

    validate(raw, path)
    how = None
    if simplify:
        raw, how = maybe_simplify(raw, dummy.numpy())
    props = metadata(spec, student_name, opset, extra_metadata)
    del raw.metadata_props[:]
    for k, v in props.items():
        raw.metadata_props.add(key=k, value=v)
    set_producer(raw)
    inferred = validate(raw, path)

    from edgekd.io import atomic_path

    with atomic_path(path) as t:
        onnx.save(raw, str(t))  # < 2 GB: one file, weights inline

    out = inferred.graph.output[0]
    return OnnxInfo(path=path, opset=opset, input_name=INPUT_NAME,
                    input_shape=_dims(inferred.graph.input[0]), output_names=[o.name for o in inferred.graph.output],
                    output_shape=_dims(out), dynamic_axes={k: dict(v) for k, v in axes.items()},
                    num_nodes=len(raw.graph.node), simplified=how)
